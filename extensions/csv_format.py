"""The directory's CSV format: `extension,display_name,owner,department,aliases`.

Reading is forgiving where spreadsheets differ (BOM, CRLF, quoting, surrounding spaces, column
order and case) and strict where guessing would corrupt names (only UTF-8 is accepted).
Writing neutralises cells a spreadsheet would run as formulas; reading strips that prefix
again, so export → import is exact.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from smartalex.errors import ApplicationError

COLUMNS = ("extension", "display_name", "owner", "department", "aliases")
REQUIRED_COLUMNS = ("extension", "display_name")
HEADER_LINE = ",".join(COLUMNS)
# Header spellings people type for the same column.
_COLUMN_SYNONYMS = {"ext": "extension", "number": "extension", "name": "display_name", "alias": "aliases"}

# OWASP CSV injection: a cell starting with one of these runs as a formula in Excel/Sheets/Calc.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NEUTRALISER = "'"


class CsvFileError(ApplicationError):
    """The file as a whole cannot be read (encoding, header, size): no row is looked at."""


def neutralise(value: str) -> str:
    """Prefixes `'` to a cell a spreadsheet would evaluate (and to one that already looks escaped,
    so that `unneutralise` can always undo exactly what this did)."""
    if value.startswith(FORMULA_TRIGGERS) or (
        value.startswith(_NEUTRALISER) and value[1:2] and value[1] in (*FORMULA_TRIGGERS, _NEUTRALISER)
    ):
        return _NEUTRALISER + value
    return value


def unneutralise(value: str) -> str:
    if value.startswith(_NEUTRALISER) and value[1:2] and value[1] in (*FORMULA_TRIGGERS, _NEUTRALISER):
        return value[1:]
    return value


def decode_upload(data: bytes) -> str:
    """UTF-8 with or without BOM; anything else is refused with what to do about it."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise CsvFileError(_save_as_utf8("The file is UTF-32 encoded."), extra={"code": "encoding"})
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:4096]:
        raise CsvFileError(_save_as_utf8("The file is UTF-16 encoded."), extra={"code": "encoding"})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start]
        raise CsvFileError(
            _save_as_utf8(
                f"The file is not UTF-8: line {line} has a byte (0x{byte:02X}) that is not valid UTF-8 "
                "(it was probably saved as Latin-1 or Windows-1252)."
            ),
            extra={"code": "encoding", "line": line},
        ) from exc
    if "\x00" in text:
        raise CsvFileError(
            "The file contains NUL characters; it is not a CSV file.", extra={"code": "encoding"}
        )
    return text


def _save_as_utf8(problem: str) -> str:
    return f"{problem} Save it as “CSV UTF-8 (comma delimited)” and upload it again."


def _canonical(name: str) -> str:
    name = name.strip().strip('"').strip().lower().replace(" ", "_").replace("-", "_")
    return _COLUMN_SYNONYMS.get(name, name)


@dataclass(frozen=True)
class CsvHeader:
    columns: tuple[str | None, ...]  # canonical name per position; None for an ignored column
    ignored: tuple[str, ...]

    @property
    def present(self) -> frozenset[str]:
        return frozenset(c for c in self.columns if c)


@dataclass(frozen=True)
class CsvRecord:
    """One row as read: values only for the columns the file has, stripped and un-neutralised."""

    line: int
    values: dict[str, str]
    extra_values: int = 0  # non-empty cells beyond the header's columns


def _parse_header(cells: list[str]) -> CsvHeader:
    columns: list[str | None] = []
    ignored: list[str] = []
    for cell in cells:
        name = _canonical(cell)
        if name in COLUMNS:
            if name in columns:
                raise CsvFileError(
                    f"The header has the column “{name}” twice.", extra={"code": "header", "line": 1}
                )
            columns.append(name)
        else:
            columns.append(None)
            if cell.strip():
                ignored.append(cell.strip())
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        hint = ""
        if len(cells) == 1 and ";" in cells[0]:
            hint = " The file seems to use “;” between values: save it with commas (CSV UTF-8)."
        raise CsvFileError(
            f"The header is missing the required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}. The first line must name the columns: {HEADER_LINE}.{hint}",
            extra={"code": "header", "line": 1, "missing": missing},
        )
    return CsvHeader(tuple(columns), tuple(ignored))


def _reader(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first physical line of the record, cells); skips blank lines."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=False)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvFileError(
                f"Line {previous_end + 1} cannot be read as CSV ({exc}). Check its quotes.",
                extra={"code": "syntax", "line": previous_end + 1},
            ) from exc
        start, previous_end = previous_end + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


def read_header(text: str) -> CsvHeader:
    for _, cells in _reader(text):
        return _parse_header(cells)
    raise CsvFileError(f"The file is empty. The first line must be: {HEADER_LINE}", extra={"code": "empty"})


def read_records(text: str) -> tuple[CsvHeader, Iterator[CsvRecord]]:
    """The header (checked now) and a lazy stream of records: the file is never held as rows."""
    rows = _reader(text)
    try:
        _, header_cells = next(rows)
    except StopIteration:
        raise CsvFileError(
            f"The file is empty. The first line must be: {HEADER_LINE}", extra={"code": "empty"}
        ) from None
    header = _parse_header(header_cells)

    def records() -> Iterator[CsvRecord]:
        width = len(header.columns)
        wanted = [(index, column) for index, column in enumerate(header.columns) if column]
        for line, cells in rows:
            if len(cells) < width:  # a short row: trailing cells left out
                cells = cells + [""] * (width - len(cells))
            values = {}
            for index, column in wanted:
                value = cells[index].strip()
                if value[:1] == _NEUTRALISER:
                    value = unneutralise(value).strip()
                values[column] = value
            extra = sum(1 for cell in cells[width:] if cell.strip()) if len(cells) > width else 0
            yield CsvRecord(line=line, values=values, extra_values=extra)

    return header, records()


def estimate_rows(text: str) -> int:
    """Lines after the header: an upper bound of the row count, found without parsing."""
    return max(text.count("\n") - (1 if text.endswith("\n") else 0), 0)


def csv_lines(rows: Iterable[tuple[str, str, str, str, str]]) -> Iterator[str]:
    """The header and one CRLF-terminated line per row (RFC 4180), formula cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralise(cell) for cell in row])
        yield buffer.getvalue()
