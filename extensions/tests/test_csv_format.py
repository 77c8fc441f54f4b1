"""Reading and writing the directory CSV: what spreadsheets produce, and what they must not run."""

from __future__ import annotations

import codecs

import pytest

from extensions.csv_format import (
    COLUMNS,
    CsvFileError,
    csv_lines,
    decode_upload,
    estimate_rows,
    neutralise,
    read_header,
    read_records,
    unneutralise,
)

from .conftest import GUIDE_CSV


def records(text: str) -> list[tuple[int, dict[str, str]]]:
    _, rows = read_records(text)
    return [(r.line, r.values) for r in rows]


SARAH = {
    "extension": "101",
    "display_name": "Sales",
    "owner": "Sarah Jones",
    "department": "Sales",
    "aliases": "sarah|sales team",
}


def test_guide_example_reads_as_two_rows_with_line_numbers():
    rows = records(GUIDE_CSV)
    assert rows[0] == (2, SARAH)
    assert rows[1][0] == 3 and rows[1][1]["aliases"] == "support|tech"


@pytest.mark.parametrize(
    "data",
    [
        GUIDE_CSV.encode(),
        codecs.BOM_UTF8 + GUIDE_CSV.encode(),
        GUIDE_CSV.replace("\n", "\r\n").encode(),
        codecs.BOM_UTF8 + GUIDE_CSV.replace("\n", "\r\n").encode(),
        GUIDE_CSV.rstrip("\n").encode(),  # no newline at the end
    ],
    ids=["lf", "bom-lf", "crlf", "bom-crlf", "no-final-newline"],
)
def test_bom_and_line_endings_do_not_matter(data):
    assert records(decode_upload(data)) == records(GUIDE_CSV)


def test_columns_in_any_order_and_case_with_spaces_around():
    text = (
        " Aliases , DEPARTMENT,Display_Name , Owner,Extension \r\n"
        " sarah|sales team , Sales ,  Sales , Sarah Jones ,  101  \r\n"
    )
    assert records(text) == [(2, SARAH)]


def test_quoted_fields_keep_commas_quotes_and_newlines():
    text = (
        "extension,display_name,owner,department,aliases\n"
        '101,"Sales, EMEA","Jones, Sarah","The ""A"" team","sarah|sales team"\n'
        '102, "Multi\nline",,Support,\n'
        "103,Plain,,,\n"
    )
    rows = records(text)
    assert rows[0][1]["display_name"] == "Sales, EMEA"
    assert rows[0][1]["owner"] == "Jones, Sarah"
    assert rows[0][1]["department"] == 'The "A" team'
    # A quoted value after a space still counts as quoted (Excel writes `, "x"` rarely, people often).
    assert rows[1] == (
        3,
        {
            "extension": "102",
            "display_name": "Multi\nline",
            "owner": "",
            "department": "Support",
            "aliases": "",
        },
    )
    assert rows[2][0] == 5  # line numbers count physical lines, past the quoted newline


def test_blank_lines_are_skipped_but_counted_in_line_numbers():
    text = "extension,display_name\n\n101,Sales\n   \n102,Support\n"
    assert [line for line, _ in records(text)] == [3, 5]


def test_only_columns_in_the_file_are_reported():
    assert records("extension,display_name\n101,Sales\n") == [
        (2, {"extension": "101", "display_name": "Sales"})
    ]


def test_short_rows_get_empty_values_and_long_rows_are_flagged():
    _, rows = read_records("extension,display_name,owner\n101\n102,Support,John,extra\n103,X,,,\n")
    short, long, trailing_commas = list(rows)
    assert short.values == {"extension": "101", "display_name": "", "owner": ""}
    assert long.extra_values == 1
    assert trailing_commas.extra_values == 0  # empty cells past the header are harmless


def test_unknown_columns_are_listed_as_ignored():
    header = read_header("extension,display_name,phone,notes\n")
    assert header.ignored == ("phone", "notes")
    assert header.present == {"extension", "display_name"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("display_name,owner\nSales,Sarah\n", "missing the required column extension."),
        ("owner,department\nSarah,Sales\n", "missing the required columns extension, display_name."),
        ("101,Sales,Sarah Jones,Sales,sarah\n", "missing the required columns extension, display_name"),
    ],
)
def test_missing_required_columns_are_refused(text, expected):
    with pytest.raises(CsvFileError) as caught:
        read_records(text)
    assert expected in caught.value.message
    assert "extension,display_name,owner,department,aliases" in caught.value.message
    assert caught.value.extra["line"] == 1


def test_semicolon_files_get_a_hint():
    with pytest.raises(CsvFileError) as caught:
        read_header("extension;display_name;owner\n101;Sales;Sarah\n")
    assert "“;”" in caught.value.message


def test_a_column_twice_is_refused():
    with pytest.raises(CsvFileError, match="column “extension” twice"):
        read_header("extension,display_name,Extension\n")


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n"])
def test_empty_file_is_refused(text):
    with pytest.raises(CsvFileError, match="The file is empty"):
        read_records(text)


def test_utf16_is_refused_with_what_to_do():
    for data in (GUIDE_CSV.encode("utf-16"), GUIDE_CSV.encode("utf-16-le"), GUIDE_CSV.encode("utf-16-be")):
        with pytest.raises(CsvFileError) as caught:
            decode_upload(data)
        assert "UTF-16" in caught.value.message and "CSV UTF-8" in caught.value.message


def test_latin1_bytes_are_refused_with_the_line():
    data = "extension,display_name\n101,Sales\n102,José Núñez\n".encode("latin-1")
    with pytest.raises(CsvFileError) as caught:
        decode_upload(data)
    assert "not UTF-8" in caught.value.message and "line 3" in caught.value.message
    assert "0xE9" in caught.value.message
    assert caught.value.extra == {"code": "encoding", "line": 3}


def test_utf8_names_are_kept():
    text = decode_upload("extension,display_name\n102,José Núñez\n".encode())
    assert records(text)[0][1]["display_name"] == "José Núñez"


@pytest.mark.parametrize(
    "value",
    ['=HYPERLINK("http://x")', "+1 555", "-Sales-", "@SUM(A1)", "\tTab", "\rCR", "'=already", "''", "'plain"],
)
def test_neutralise_is_undone_exactly(value):
    assert unneutralise(neutralise(value)) == value


@pytest.mark.parametrize("value", ["=1+1", "+1", "-2", "@x", "\tx", "\rx"])
def test_formula_cells_are_neutralised(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["Sales", "101", "'plain", "a=b", ""])
def test_ordinary_cells_are_left_alone(value):
    assert neutralise(value) == value
    assert unneutralise(value) == value


def test_written_file_neutralises_and_reads_back_the_same():
    rows = [
        ("101", "=cmd|' /C calc'!A0", "+Sarah", "-Sales", "@sarah|sales team"),
        ("102", "Support", "John Smith", "Support", "support|tech"),
    ]
    text = "".join(csv_lines(rows))
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert "\r\n" in text
    second_line = text.splitlines()[1]
    assert second_line.startswith("101,'=cmd") and ",'+Sarah,'-Sales,'@sarah" in second_line
    back = [tuple(values[c] for c in COLUMNS) for _, values in records(text)]
    assert back == rows


def test_export_of_the_guide_rows_is_the_guide_file():
    rows = [
        ("101", "Sales", "Sarah Jones", "Sales", "sarah|sales team"),
        ("102", "Support", "John Smith", "Support", "support|tech"),
    ]
    assert "".join(csv_lines(rows)).replace("\r\n", "\n") == GUIDE_CSV


def test_estimate_rows_is_an_upper_bound_without_parsing():
    assert estimate_rows(GUIDE_CSV) == 2
    assert estimate_rows(GUIDE_CSV.rstrip("\n")) == 2
    assert estimate_rows("extension,display_name\n") == 0


def test_broken_quoting_names_the_line():
    # An unterminated quote swallows the rest of the file; csv reports it at the end.
    with pytest.raises(CsvFileError) as caught:
        list(read_records('extension,display_name\n101,"Sales\n' + "x" * 200_000)[1])
    assert caught.value.extra["code"] == "syntax"
