"""The import planner: every row checked, with its line and column, and the exact diff."""

from __future__ import annotations

import pytest

from extensions.csv_format import read_records
from extensions.importing import ExistingExtension, ImportPlanner, ImportReport, RowLimitExceeded
from extensions.models import ImportMode

from .conftest import GUIDE_CSV

HEADER = "extension,display_name,owner,department,aliases\n"
SALES = ExistingExtension(1, "Sales", "Sarah Jones", "Sales", ("sarah", "sales team"))
SUPPORT = ExistingExtension(2, "Support", "John Smith", "Support", ("support", "tech"))


def plan(text: str, existing: dict | None = None, mode: str = ImportMode.MERGE, **kwargs) -> ImportReport:
    header, rows = read_records(text)
    return ImportPlanner(existing=existing or {}, mode=mode, **kwargs).run(header, rows)


def errors(report: ImportReport) -> list[tuple]:
    return [(p.line, p.column, p.message) for p in report.errors]


def test_guide_file_on_an_empty_directory_creates_two():
    report = plan(GUIDE_CSV)
    assert (report.rows, report.created, report.updated, report.unchanged, report.deleted) == (2, 2, 0, 0, 0)
    assert report.ok and report.warnings == []
    assert report.changes[0].action == "create" and report.changes[0].line == 2
    assert report.changes[0].values == {
        "display_name": "Sales",
        "owner": "Sarah Jones",
        "department": "Sales",
        "aliases": ["sarah", "sales team"],
    }


def test_same_file_again_is_all_unchanged():
    report = plan(GUIDE_CSV, {"101": SALES, "102": SUPPORT})
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    assert report.changes == []


def test_changed_row_shows_old_and_new_per_field():
    text = HEADER + "101,Sales desk,Sarah Jones,Sales,sarah\n102,Support,John Smith,Support,support|tech\n"
    report = plan(text, {"101": SALES, "102": SUPPORT})
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    (change,) = report.changes
    assert change.action == "update" and change.extension == "101" and change.line == 2
    assert change.changes == {
        "display_name": {"old": "Sales", "new": "Sales desk"},
        "aliases": {"old": ["sarah", "sales team"], "new": ["sarah"]},
    }


def test_columns_left_out_of_the_file_keep_their_values():
    report = plan("extension,display_name\n101,Sales desk\n", {"101": SALES})
    assert report.updated == 1
    assert set(report.changes[0].changes) == {"display_name"}  # owner, department, aliases kept


def test_replace_mode_deletes_what_the_file_leaves_out():
    report = plan(
        HEADER + "101,Sales,Sarah Jones,Sales,sarah|sales team\n", {"101": SALES, "102": SUPPORT}, "replace"
    )
    assert (report.unchanged, report.deleted) == (1, 1)
    assert [(c.action, c.extension) for c in report.changes] == [("delete", "102")]


def test_merge_mode_never_deletes():
    report = plan(HEADER + "103,Billing,,,\n", {"101": SALES, "102": SUPPORT})
    assert (report.created, report.deleted) == (1, 0)


def test_every_broken_row_is_reported_with_line_and_column():
    text = (
        HEADER
        + "101,Sales,Sarah Jones,Sales,sarah\n"  # line 2: fine
        + "10 1,Bad number,,,\n"  # line 3
        + "102,,John Smith,Support,\n"  # line 4: display name missing
        + "101,Again,,,\n"  # line 5: duplicate of line 2
        + f"103,{'x' * 101},,,\n"  # line 6: too long
        + "104,Desk,,,SARAH\n"  # line 7: alias of 101 (case-insensitive)
        + ",No number,,,\n"  # line 8
        + "105,Too,many,values,here,extra\n"  # line 9
    )
    report = plan(text)
    found = errors(report)
    assert (3, "extension", "Extension “10 1” must be digits (like 101) or a SIP user name") in [
        (line, column, message[:61]) for line, column, message in found
    ]
    assert (4, "display_name", "Display name is required.") in found
    assert (5, "extension", "Extension 101 is also on line 2.") in found
    assert (6, "display_name", "Display name is longer than 100 characters (101).") in found
    assert (7, "aliases", "Alias “SARAH” is also on extension 101 (line 2).") in found
    assert (8, "extension", "Extension is required.") in found
    assert any(
        line == 9 and column is None and "more values than the header" in msg for line, column, msg in found
    )
    assert report.error_count == len(found) == 7
    assert not report.ok


def test_sip_user_part_extensions_are_accepted():
    text = HEADER + "sales.desk,Sales,,,\n*97,Voicemail,,,\n+4420,London,,,\n%41bc,Escaped,,,\n"
    report = plan(text)
    assert report.ok and report.created == 4


@pytest.mark.parametrize("number", ["10#1", "ext 101", "sales@desk", "x" * 33, "%4"])
def test_invalid_sip_user_parts_are_refused(number):
    report = plan(HEADER + f'"{number}",Desk,,,\n')
    assert report.errors[0].column == "extension" and report.errors[0].line == 2


def test_alias_rules():
    too_many = "|".join(f"alias{i}" for i in range(21))
    text = (
        HEADER
        + f"101,Sales,,,sarah|{'y' * 65}\n102,Support,,,{too_many}\n103,Desk,,,front|Front|front desk\n"
    )
    report = plan(text)
    assert (2, "aliases", f"Alias “{'y' * 20}…” is longer than 64 characters.") in errors(report)
    assert (3, "aliases", "An extension may have at most 20 aliases (21 given).") in errors(report)
    # The same alias twice on one extension is kept once, with a warning, not an error.
    assert [(w.line, w.column) for w in report.warnings] == [(4, "aliases")]
    assert report.error_count == 2


def test_alias_taken_by_an_extension_the_file_does_not_touch():
    report = plan(HEADER + "103,Desk,,,tech\n", {"101": SALES, "102": SUPPORT})
    assert errors(report) == [
        (2, "aliases", "Alias “tech” is already used by extension 102, which this file does not change.")
    ]
    # In replace mode 102 goes away, so the alias is free.
    assert plan(HEADER + "103,Desk,,,tech\n", {"101": SALES, "102": SUPPORT}, "replace").ok
    # Moving the alias in the same file is fine too.
    moved = HEADER + "102,Support,John Smith,Support,support\n103,Desk,,,tech\n"
    assert plan(moved, {"101": SALES, "102": SUPPORT}).ok


def test_sound_alike_names_are_a_warning_not_an_error():
    text = HEADER + "101,Sales,Sarah Jones,Sales,\n105,Reception,Sara Lee,Front desk,\n"
    report = plan(text)
    assert report.ok and report.created == 2
    (warning,) = report.warnings
    assert (warning.line, warning.column, warning.extension) == (3, "owner", "105")
    assert "“Sara” sounds like “Sarah” on extension 101 (line 2)" in warning.message


def test_sound_alike_against_the_directory_is_reported_on_the_file_row():
    report = plan(HEADER + "105,Reception,Sara Lee,Front desk,\n", {"101": SALES})
    (warning,) = report.warnings
    assert warning.line == 2 and "extension 101 (already in the directory)" in warning.message


def test_identical_names_and_numbered_names_do_not_warn():
    text = HEADER + "101,Room 101,Sarah Jones,,\n102,Room 102,Sarah Lee,,\n"
    assert plan(text).warnings == []


def test_unknown_columns_warn_on_line_one():
    report = plan("extension,display_name,fax\n101,Sales,123\n")
    assert report.ok and [(w.line, w.message) for w in report.warnings] == [
        (1, "The column “fax” is not part of the format and is ignored.")
    ]


def test_header_only_is_an_error():
    assert errors(plan(HEADER)) == [(None, None, "The file has a header but no rows.")]


def test_unclosed_quote_is_caught_instead_of_merging_rows():
    report = plan(HEADER + '101,"Sales,Sarah Jones,Sales,\n102,Support,John Smith,Support,\n')
    assert not report.ok
    assert report.errors[0].line == 2 and "closing quote" in report.errors[0].message


def test_row_limit_stops_reading():
    text = HEADER + "".join(f"{100 + i},Desk {i},,,\n" for i in range(6))
    assert plan(text, max_rows=6).rows == 6
    with pytest.raises(RowLimitExceeded):
        plan(text, max_rows=5)


def test_listed_problems_are_capped_but_counted():
    text = HEADER + ",x,,,\n" * 1200
    report = plan(text)
    assert report.error_count == 1200 and len(report.errors) == 1000


def test_report_survives_json_round_trip():
    report = plan(HEADER + "101,Sales,Sarah,,\n10 1,x,,,\n")
    assert ImportReport.from_dict(report.to_dict()) == report


def test_only_created_and_changed_rows_are_handed_to_the_writer():
    text = HEADER + "101,Sales,Sarah Jones,Sales,sarah|sales team\n102,Support desk,,,\n103,New,,,\n"
    staged = []
    header, rows = read_records(text)
    report = ImportPlanner(existing={"101": SALES, "102": SUPPORT}, on_upsert=staged.append).run(header, rows)
    assert report.ok
    assert [(v.number, v.display_name, v.owner) for v in staged] == [
        ("102", "Support desk", ""),
        ("103", "New", ""),
    ]
