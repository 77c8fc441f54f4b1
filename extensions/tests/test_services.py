"""Directory writes on PostgreSQL: single extensions and whole files, all or nothing."""

from __future__ import annotations

import codecs

import pytest
from django.core.cache import cache
from django.db import transaction

from extensions.csv_format import CsvFileError, csv_lines
from extensions.models import Extension
from extensions.rules import ExtensionValues
from extensions.selectors import directory_export_rows, directory_fingerprint
from extensions.services import (
    _run_import,
    extension_create,
    extension_delete,
    extension_import,
    extension_update,
)
from smartalex.errors import ApplicationError
from trunks.config_version import CONFIG_VERSION_KEY

from .conftest import GUIDE_CSV

pytestmark = pytest.mark.django_db
HEADER = "extension,display_name,owner,department,aliases\n"


def directory(trunk) -> list[tuple]:
    return list(
        Extension.objects.filter(trunk=trunk)
        .order_by("number")
        .values_list("number", "display_name", "owner", "department", "aliases")
    )


GUIDE_ROWS = [
    ("101", "Sales", "Sarah Jones", "Sales", ["sarah", "sales team"]),
    ("102", "Support", "John Smith", "Support", ["support", "tech"]),
]


def test_create_strips_and_checks(trunk):
    extension = extension_create(
        trunk=trunk,
        values=ExtensionValues(" 101 ", "  Sales   desk ", " Sarah  Jones", "Sales", (" sarah ", "")),
    )
    assert (extension.number, extension.display_name, extension.owner, extension.aliases) == (
        "101",
        "Sales desk",
        "Sarah Jones",
        ["sarah"],
    )
    assert extension.tenant_id == trunk.tenant_id


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (ExtensionValues("", "Sales"), "extension"),
        (ExtensionValues("1 01", "Sales"), "extension"),
        (ExtensionValues("101", ""), "display_name"),
        (ExtensionValues("101", "x" * 101), "display_name"),
        (ExtensionValues("101", "Sales", aliases=("a|b",)), "aliases"),
    ],
)
def test_create_refuses_bad_values_with_the_field(trunk, values, field):
    with pytest.raises(ApplicationError) as caught:
        extension_create(trunk=trunk, values=values)
    assert field in caught.value.extra["fields"]
    assert not Extension.objects.exists()


def test_numbers_and_aliases_are_unique_per_trunk(trunk, other_trunk, guide_extensions):
    with pytest.raises(ApplicationError, match="Extension 101 already exists"):
        extension_create(trunk=trunk, values=ExtensionValues("101", "Other"))
    with pytest.raises(ApplicationError, match="Alias “Tech” is already used by extension 102"):
        extension_create(trunk=trunk, values=ExtensionValues("103", "Desk", aliases=("Tech",)))
    # Another trunk (here: another workspace's) has its own numbering and aliases.
    extension_create(trunk=other_trunk, values=ExtensionValues("101", "Theirs", aliases=("tech",)))
    assert Extension.objects.filter(trunk=trunk).count() == 2


def test_update_keeps_its_own_number_and_aliases(guide_extensions):
    sales = guide_extensions[0]
    updated = extension_update(
        extension=sales, values=ExtensionValues("101", "Sales desk", "Sarah Jones", "Sales", ("sarah",))
    )
    assert Extension.objects.get(pk=sales.pk).display_name == "Sales desk" == updated.display_name
    with pytest.raises(ApplicationError, match="Extension 102 already exists"):
        extension_update(extension=sales, values=ExtensionValues("102", "Sales"))
    with pytest.raises(ApplicationError, match="already used by extension 102"):
        extension_update(extension=sales, values=ExtensionValues("101", "Sales", aliases=("support",)))


def test_writes_tell_the_engines_to_reload(trunk, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        extension = extension_create(trunk=trunk, values=ExtensionValues("101", "Sales"))
    assert cache.get(CONFIG_VERSION_KEY) == 1
    with django_capture_on_commit_callbacks(execute=True):
        extension_delete(extension=extension)
    assert cache.get(CONFIG_VERSION_KEY) == 2
    with django_capture_on_commit_callbacks(execute=True):
        extension_import(trunk=trunk, data=GUIDE_CSV.encode(), dry_run=False)
    assert cache.get(CONFIG_VERSION_KEY) == 3


def test_import_then_same_file_again_changes_nothing(trunk):
    first = extension_import(trunk=trunk, data=GUIDE_CSV.encode(), dry_run=False)
    assert (first.created, first.committed) == (2, True)
    assert directory(trunk) == GUIDE_ROWS
    fingerprint = directory_fingerprint(trunk=trunk)
    second = extension_import(trunk=trunk, data=GUIDE_CSV.encode(), dry_run=False)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert directory_fingerprint(trunk=trunk) == fingerprint  # not even updated_at moved


def test_dry_run_writes_nothing(trunk):
    report = extension_import(trunk=trunk, data=GUIDE_CSV.encode(), dry_run=True)
    assert (report.created, report.dry_run, report.committed) == (2, True, False)
    assert directory(trunk) == []


def test_a_file_with_any_bad_row_imports_nothing(trunk, guide_extensions):
    before = directory(trunk)
    text = HEADER + "101,Sales desk,,,\n103,New,,,\n104,,,,\n"
    report = extension_import(trunk=trunk, data=text.encode(), dry_run=False)
    assert not report.ok and not report.committed
    assert [(e.line, e.column) for e in report.errors] == [(4, "display_name")]
    assert directory(trunk) == before


def test_upsert_updates_in_place_and_keeps_created_at(trunk, guide_extensions):
    sales = guide_extensions[0]
    text = HEADER + "101,Sales desk,Sarah Jones,Sales,sarah\n103,Billing,Ann Lee,Finance,billing|accounts\n"
    report = extension_import(trunk=trunk, data=text.encode(), dry_run=False)
    assert (report.created, report.updated, report.unchanged, report.deleted) == (1, 1, 0, 0)
    sales_after = Extension.objects.get(trunk=trunk, number="101")
    assert sales_after.pk == sales.pk and sales_after.created_at == sales.created_at
    assert sales_after.updated_at > sales.updated_at
    assert (sales_after.display_name, sales_after.aliases) == ("Sales desk", ["sarah"])
    assert Extension.objects.filter(trunk=trunk).count() == 3  # 102 kept (merge)


def test_replace_mode_deletes_the_rest(trunk, guide_extensions):
    text = HEADER + "102,Support,John Smith,Support,support|tech\n103,Billing,,,\n"
    report = extension_import(trunk=trunk, data=text.encode(), mode="replace", dry_run=False)
    assert (report.created, report.unchanged, report.deleted) == (1, 1, 1)
    assert [row[0] for row in directory(trunk)] == ["102", "103"]


def test_import_never_touches_another_trunk(trunk, other_trunk, foreign_extension):
    extension_import(trunk=trunk, data=(HEADER + "201,Mine,,,\n").encode(), mode="replace", dry_run=False)
    foreign_extension.refresh_from_db()
    assert foreign_extension.display_name == "Globex desk"
    assert Extension.objects.filter(trunk=other_trunk).count() == 1


def test_api_row_limit_is_500(trunk):
    def rows(n: int) -> bytes:
        return (HEADER + "".join(f"{1000 + i},Desk {i},,,\n" for i in range(n))).encode()

    assert extension_import(trunk=trunk, data=rows(500), dry_run=False).created == 500
    with pytest.raises(ApplicationError) as caught:
        extension_import(trunk=trunk, data=rows(501), dry_run=True)
    assert caught.value.status_code == 413
    assert "at most 500 rows" in caught.value.message


def test_whole_file_problems_raise_before_any_row(trunk):
    with pytest.raises(CsvFileError, match="UTF-16"):
        extension_import(trunk=trunk, data=GUIDE_CSV.encode("utf-16"), dry_run=True)
    with pytest.raises(ApplicationError, match="Unknown import mode"):
        extension_import(trunk=trunk, data=GUIDE_CSV.encode(), mode="append", dry_run=True)


def test_export_then_import_changes_nothing(trunk):
    text = (
        HEADER
        + '101,"Sales, EMEA","Jones, Sarah",=Sales,sarah|sales team\n'
        + "102,-Support-,+John,@Support,support|tech\n"
        + "103,José Núñez,'quoted,,\n"
        + "1000,Board room,,,\n"
    )
    assert extension_import(trunk=trunk, data=codecs.BOM_UTF8 + text.encode(), dry_run=False).created == 4
    exported = "".join(csv_lines(directory_export_rows(tenant=trunk.tenant, trunk=trunk)))
    # Formula-looking cells are neutralised on the way out …
    assert "'=Sales" in exported and "'-Support-" in exported and "'+John" in exported
    # … in dialling order (101 before 1000) …
    assert [line.split(",")[0] for line in exported.splitlines()[1:]] == ["101", "102", "103", "1000"]
    report = extension_import(trunk=trunk, data=exported.encode(), mode="replace", dry_run=False)
    # … and come back exactly.
    assert (report.unchanged, report.created, report.updated, report.deleted) == (4, 0, 0, 0)
    assert Extension.objects.get(trunk=trunk, number="101").department == "=Sales"


@pytest.mark.parametrize("portable", [False, True], ids=["copy-staging", "batch-upsert"])
def test_both_writers_apply_all_or_nothing(trunk, guide_extensions, portable):
    def run(text: str, mode: str = "merge"):
        with transaction.atomic():
            return _run_import(
                trunk=trunk, text=text, mode=mode, dry_run=False, max_rows=10_000, portable_writer=portable
            )

    report = run(HEADER + "101,Sales desk,Sarah Jones,Sales,sarah\n103,Billing,,,\n", mode="replace")
    assert (report.committed, report.created, report.updated, report.deleted) == (True, 1, 1, 1)
    assert directory(trunk) == [
        ("101", "Sales desk", "Sarah Jones", "Sales", ["sarah"]),
        ("103", "Billing", "", "", []),
    ]
    # More rows than one write batch, the last one bad: the batches already written are undone.
    rows = "".join(f"{5000 + i},Desk {i},,,\n" for i in range(2100))
    report = run(HEADER + rows + "9999,,,,\n")
    assert not report.ok and not report.committed and report.created == 2100
    assert [row[0] for row in directory(trunk)] == ["101", "103"]


def test_row_limit_in_the_middle_of_a_real_import_leaves_the_connection_usable(trunk):
    rows = "".join(f"{3000 + i},Desk {i},,,\n" for i in range(501))
    with pytest.raises(ApplicationError):
        extension_import(trunk=trunk, data=(HEADER + rows).encode(), dry_run=False)
    assert not Extension.objects.exists()
    assert extension_import(trunk=trunk, data=GUIDE_CSV.encode(), dry_run=False).created == 2
