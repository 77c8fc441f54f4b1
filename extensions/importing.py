"""Checking a CSV file against a trunk's directory and working out what importing it would do.

The planner streams the records once: it checks every row, counts what would change (the
preview), and hands each row that creates or changes an extension to `on_upsert` (a writer, see
writers.py). Nothing here touches the database: the caller passes the directory as it is
(`existing`) and decides whether the staged rows are applied, so the same code serves the page,
the API and the worker. Memory grows with the number of distinct extensions and aliases, never
with whole rows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import jellyfish

from .csv_format import CsvHeader, CsvRecord
from .models import ImportMode
from .rules import ExtensionValues, alias_key, clean_values, split_aliases

# What a report lists in full; counts are always exact.
MAX_LISTED = 1000
PROGRESS_EVERY = 1000
_SOUND_CACHE_SIZE = 50_000
_DIGIT = re.compile(r"\d")
_NOT_LETTERS = re.compile(r"[^a-z0-9]+")
_FIELDS = ("display_name", "owner", "department", "aliases")


@dataclass(frozen=True, slots=True)
class ExistingExtension:
    id: int
    display_name: str
    owner: str
    department: str
    aliases: tuple[str, ...]


@dataclass
class Problem:
    line: int | None
    column: str | None
    message: str
    extension: str | None = None


@dataclass
class Change:
    action: str  # "create" | "update" | "delete"
    extension: str
    line: int | None = None
    values: dict[str, Any] | None = None  # create and delete: the whole extension
    changes: dict[str, dict[str, Any]] | None = None  # update: field -> {"old", "new"}


@dataclass
class ImportReport:
    mode: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    error_count: int = 0
    warning_count: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    changes_truncated: bool = False
    dry_run: bool = True
    committed: bool = False

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        data = dict(data)
        data["errors"] = [Problem(**p) for p in data.get("errors", [])]
        data["warnings"] = [Problem(**p) for p in data.get("warnings", [])]
        data["changes"] = [Change(**c) for c in data.get("changes", [])]
        return cls(**data)


def _spoken(text: str) -> str:
    """Letters as a caller would say them: no accents, case or punctuation."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_NOT_LETTERS.sub(" ", text.casefold().replace("'", "")).split())


@dataclass(frozen=True)
class _Named:
    spelling: str
    original: str
    extension: str
    line: int | None
    column: str


class ImportPlanner:
    def __init__(
        self,
        *,
        existing: Mapping[str, ExistingExtension],
        mode: str = ImportMode.MERGE,
        max_rows: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        on_upsert: Callable[[ExtensionValues], None] | None = None,
    ) -> None:
        self.existing = existing
        self.mode = mode
        self.max_rows = max_rows
        self.on_progress = on_progress
        # Called with every row that creates or changes an extension, as soon as it is checked.
        self.on_upsert = on_upsert
        self.report = ImportReport(mode=mode)
        self._numbers: dict[str, int] = {}  # extension -> line
        self._aliases: dict[str, tuple[str, int]] = {}  # alias key -> (extension, line)
        self._sounds: dict[str, _Named] = {}  # phonetic key -> first name with that sound
        self._warned_pairs: set[tuple[str, str]] = set()
        self._sound_cache: dict[str, tuple[str, str] | None] = {}

    # --- the first pass: validate and count -------------------------------------------------
    def run(self, header: CsvHeader, records: Iterator[CsvRecord]) -> ImportReport:
        for column in header.ignored:
            self._warn(1, None, f"The column “{column}” is not part of the format and is ignored.")
        for record in records:
            self.report.rows += 1
            if self.max_rows is not None and self.report.rows > self.max_rows:
                raise RowLimitExceeded(self.max_rows)
            self._check(record)
            if self.on_progress and self.report.rows % PROGRESS_EVERY == 0:
                self.on_progress(self.report.rows)
        if self.report.rows == 0:
            self._error(None, None, "The file has a header but no rows.")
        self._check_against_untouched()
        if self.mode == ImportMode.REPLACE:
            for number, ext in self.existing.items():
                if number not in self._numbers:
                    self.report.deleted += 1
                    if self._listing():
                        self._change(Change("delete", number, values=self._values_dict(ext)))
        self.report.errors.sort(key=lambda p: p.line or 0)
        self.report.warnings.sort(key=lambda p: p.line or 0)
        return self.report

    def _check(self, record: CsvRecord) -> None:
        line, raw = record.line, record.values
        number = raw["extension"].strip()
        if record.extra_values:
            self._error(
                line,
                None,
                f"Line {line} has more values than the header has columns: "
                "put quotes around values that contain a comma.",
                number,
            )
        for column, value in raw.items():
            if ("\n" in value or "\r" in value) and value.strip():
                self._error(
                    line,
                    column,
                    f'The {column} value runs over several lines: a closing quote (") is probably missing.',
                    number,
                )
        first_line = self._numbers.get(number)
        if number and first_line is not None:
            self._error(line, "extension", f"Extension {number} is also on line {first_line}.", number)
        elif number:
            self._numbers[number] = line
        existing = self.existing.get(number)
        cleaned = clean_values(**self._merged(raw, existing))
        for column, messages in cleaned.errors.items():
            for message in messages:
                self._error(line, column, message, number)
        for column, messages in cleaned.warnings.items():
            for message in messages:
                self._warn(line, column, message, number)
        for alias in cleaned.aliases:
            other = self._aliases.setdefault(alias_key(alias), (number, line))
            if other[0] != number:
                self._error(
                    line,
                    "aliases",
                    f"Alias “{alias}” is also on extension {other[0]} (line {other[1]}).",
                    number,
                )
        values = cleaned.values
        if values is None:
            return
        self._check_sound_alike(values, number=number, line=line)
        if first_line is not None:
            return
        if existing is None:
            self.report.created += 1
            if self.on_upsert:
                self.on_upsert(values)
            if self._listing():
                self._change(Change("create", number, line, values=self._values_dict(values)))
            return
        changed = [name for name in _FIELDS if getattr(existing, name) != getattr(values, name)]
        if not changed:
            self.report.unchanged += 1
            return
        self.report.updated += 1
        if self.on_upsert:
            self.on_upsert(values)
        if self._listing():
            changes = {
                name: {"old": _plain(getattr(existing, name)), "new": _plain(getattr(values, name))}
                for name in changed
            }
            self._change(Change("update", number, line, changes=changes))

    def _merged(self, raw: dict[str, str], existing: ExistingExtension | None) -> dict[str, Any]:
        """A column the file leaves out keeps its current value (empty for a new extension)."""

        def pick(column: str) -> str:
            if column in raw:
                return raw[column]
            return getattr(existing, column) if existing else ""

        aliases = (
            split_aliases(raw["aliases"]) if "aliases" in raw else (existing.aliases if existing else ())
        )
        return {
            "number": raw["extension"],
            "display_name": pick("display_name"),
            "owner": pick("owner"),
            "department": pick("department"),
            "aliases": aliases,
        }

    def _check_against_untouched(self) -> None:
        """In merge mode the extensions the file does not mention stay: they must not clash."""
        if self.mode != ImportMode.MERGE:
            return
        for number, ext in self.existing.items():
            if number in self._numbers:
                continue
            for alias in ext.aliases:
                in_file = self._aliases.get(alias_key(alias))
                if in_file is not None:
                    self._error(
                        in_file[1],
                        "aliases",
                        f"Alias “{alias}” is already used by extension {number}, which this file "
                        "does not change.",
                        in_file[0],
                    )
            self._check_sound_alike(ext, number=number, line=None)

    # --- sound-alike names ------------------------------------------------------------------
    def _sound_of(self, original: str) -> tuple[str, str] | None:
        """(spelling, metaphone key) of a name, or None for one that is not a spoken name.
        Cached: real directories repeat first names and departments a lot."""
        if not original or _DIGIT.search(original):
            return None  # "Room 101", "desk 7": numbers, not names that can be misheard
        try:
            return self._sound_cache[original]
        except KeyError:
            pass
        spelling = _spoken(original)
        key = jellyfish.metaphone(spelling) if spelling else ""
        sound = (spelling, key) if key else None
        if len(self._sound_cache) < _SOUND_CACHE_SIZE:
            self._sound_cache[original] = sound
        return sound

    def _check_sound_alike(
        self, values: ExtensionValues | ExistingExtension, *, number: str, line: int | None
    ) -> None:
        """Warns when two extensions answer to names spelled differently that sound the same
        ("Sara" / "Sarah"): the speech recogniser cannot tell them apart. `line` is None for an
        extension already in the directory that the file leaves alone."""
        first_name = values.owner.split()[0] if values.owner else ""
        names = [("display_name", values.display_name), ("owner", values.owner), ("owner", first_name)]
        names += [("aliases", alias) for alias in values.aliases]
        warned_columns: set[str] = set()
        for column, original in names:
            sound = self._sound_of(original)
            if sound is None:
                continue
            spelling, key = sound
            known = self._sounds.get(key)
            if known is None:
                self._sounds[key] = _Named(spelling, original, number, line, column)
                continue
            if known.extension == number or known.spelling == spelling or column in warned_columns:
                continue
            if line is None and known.line is None:
                continue  # two names already in the directory: not this file's doing
            pair = (min(known.spelling, spelling), max(known.spelling, spelling))
            if pair in self._warned_pairs:
                continue
            self._warned_pairs.add(pair)
            advice = "callers may reach the wrong one. A department or an alias tells them apart."
            if line is None:  # report it on the file's row, naming the extension already there
                self._warn(
                    known.line,
                    known.column,
                    f"“{known.original}” sounds like “{original}” on extension {number} "
                    f"(already in the directory): {advice}",
                    known.extension,
                )
            else:
                warned_columns.add(column)
                where = f" (line {known.line})" if known.line else " (already in the directory)"
                self._warn(
                    line,
                    column,
                    f"“{original}” sounds like “{known.original}” on extension {known.extension}{where}: "
                    f"{advice}",
                    number,
                )

    # --- what to delete ------------------------------------------------------------------
    def deleted_ids(self) -> list[int]:
        if self.mode != ImportMode.REPLACE:
            return []
        return [ext.id for number, ext in self.existing.items() if number not in self._numbers]

    # --- report helpers ---------------------------------------------------------------------
    def _error(self, line: int | None, column: str | None, message: str, number: str | None = None) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < MAX_LISTED:
            self.report.errors.append(Problem(line, column, message, number or None))

    def _warn(self, line: int | None, column: str | None, message: str, number: str | None = None) -> None:
        self.report.warning_count += 1
        if len(self.report.warnings) < MAX_LISTED:
            self.report.warnings.append(Problem(line, column, message, number or None))

    def _listing(self) -> bool:
        """Whether one more change is listed (counts are always complete)."""
        if len(self.report.changes) < MAX_LISTED:
            return True
        self.report.changes_truncated = True
        return False

    def _change(self, change: Change) -> None:
        self.report.changes.append(change)

    @staticmethod
    def _values_dict(values: ExtensionValues | ExistingExtension) -> dict[str, Any]:
        return {name: _plain(getattr(values, name)) for name in _FIELDS}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class RowLimitExceeded(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit
