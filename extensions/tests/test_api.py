"""/api/v1/trunks/{trunk_id}/extensions/: CRUD, CSV import (dry run, limits, report) and export."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from conftest import api_client_for
from extensions.models import Extension
from smartalex.tenancy.models import Role

from .conftest import GUIDE_CSV

pytestmark = pytest.mark.django_db
HEADER = "extension,display_name,owner,department,aliases\n"


def list_url(trunk) -> str:
    return reverse("extension-list", args=[trunk.pk])


def detail_url(trunk, extension) -> str:
    return reverse("extension-detail", args=[trunk.pk, extension.pk])


def import_url(trunk, query: str = "") -> str:
    return f"/api/v1/trunks/{trunk.pk}/extensions/import{query}"


def export_url(trunk) -> str:
    return f"/api/v1/trunks/{trunk.pk}/extensions/export"


def post_csv(api, url: str, text: str | bytes):
    body = text.encode() if isinstance(text, str) else text
    return api.generic("POST", url, body, content_type="text/csv")


def snapshot():
    return list(
        Extension.objects.order_by("id").values_list("id", "trunk_id", "number", "display_name", "aliases")
    )


# --- CRUD --------------------------------------------------------------------------------------
def test_list_is_paginated_in_dialling_order_and_searchable(api, trunk, guide_extensions):
    from extensions.rules import ExtensionValues
    from extensions.services import extension_create

    extension_create(trunk=trunk, values=ExtensionValues("1000", "Board room"))
    body = api.get(list_url(trunk)).json()
    assert body["count"] == 3
    assert [e["extension"] for e in body["results"]] == ["101", "102", "1000"]
    assert body["results"][0] == {
        "id": guide_extensions[0].pk,
        "trunk": trunk.pk,
        "extension": "101",
        "display_name": "Sales",
        "owner": "Sarah Jones",
        "department": "Sales",
        "aliases": ["sarah", "sales team"],
        "created_at": body["results"][0]["created_at"],
        "updated_at": body["results"][0]["updated_at"],
    }
    found = api.get(list_url(trunk), {"search": "tech"}).json()
    assert [e["extension"] for e in found["results"]] == ["102"]


def test_create_retrieve_update_delete(api, trunk):
    created = api.post(
        list_url(trunk),
        {"extension": "101", "display_name": "Sales", "owner": "Sarah Jones", "aliases": ["sarah"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    extension = Extension.objects.get(pk=created.json()["id"])
    assert (extension.tenant_id, extension.trunk_id, extension.department) == (trunk.tenant_id, trunk.pk, "")

    assert api.get(detail_url(trunk, extension)).json()["owner"] == "Sarah Jones"
    patched = api.patch(detail_url(trunk, extension), {"department": "Sales"}, format="json")
    assert patched.status_code == 200 and patched.json()["aliases"] == ["sarah"]  # untouched by PATCH
    put = api.put(
        detail_url(trunk, extension), {"extension": "111", "display_name": "Sales desk"}, format="json"
    )
    assert put.status_code == 200
    extension.refresh_from_db()
    assert (extension.number, extension.display_name, extension.owner, extension.aliases) == (
        "111",
        "Sales desk",
        "",
        [],
    )
    assert api.delete(detail_url(trunk, extension)).status_code == 204
    assert not Extension.objects.exists()


def test_validation_errors_name_the_field(api, trunk, guide_extensions):
    bad = api.post(list_url(trunk), {"extension": "10 1", "display_name": "X"}, format="json")
    assert bad.status_code == 400 and "extension" in bad.json()["extra"]["fields"]
    taken = api.post(list_url(trunk), {"extension": "101", "display_name": "X"}, format="json")
    assert (
        taken.status_code == 400 and taken.json()["message"] == "Extension 101 already exists on this trunk."
    )
    alias = api.post(
        list_url(trunk), {"extension": "103", "display_name": "X", "aliases": ["TECH"]}, format="json"
    )
    assert alias.status_code == 400 and "already used by extension 102" in alias.json()["message"]
    missing = api.post(list_url(trunk), {"extension": "103"}, format="json")
    assert missing.status_code == 400 and "display_name" in missing.json()["extra"]["fields"]
    assert Extension.objects.count() == 2


def test_trunk_in_the_body_is_ignored(api, trunk, other_trunk):
    response = api.post(
        list_url(trunk), {"extension": "101", "display_name": "Sales", "trunk": other_trunk.pk}, format="json"
    )
    assert response.status_code == 201
    assert Extension.objects.get().trunk_id == trunk.pk


# --- import ------------------------------------------------------------------------------------
def test_import_dry_run_then_commit_then_again(api, trunk):
    dry = post_csv(api, import_url(trunk, "?dry_run=1"), GUIDE_CSV)
    assert dry.status_code == 200
    report = dry.json()
    assert (report["dry_run"], report["committed"], report["created"], report["rows"]) == (True, False, 2, 2)
    assert report["changes"][0] == {
        "action": "create",
        "extension": "101",
        "line": 2,
        "values": {
            "display_name": "Sales",
            "owner": "Sarah Jones",
            "department": "Sales",
            "aliases": ["sarah", "sales team"],
        },
        "changes": None,
    }
    assert not Extension.objects.exists()

    done = post_csv(api, import_url(trunk), GUIDE_CSV).json()
    assert (done["dry_run"], done["committed"], done["created"]) == (False, True, 2)
    assert Extension.objects.filter(trunk=trunk).count() == 2

    again = post_csv(api, import_url(trunk, "/"), GUIDE_CSV).json()  # trailing slash works too
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)


def test_bad_rows_answer_400_with_the_report_and_import_nothing(api, trunk):
    text = HEADER + "101,Sales,,,sarah\n102,,,,\n101,Twice,,,\n"
    response = post_csv(api, import_url(trunk), text)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "2 problems in the file; nothing was imported."
    report = body["extra"]["report"]
    assert [(e["line"], e["column"], e["extension"]) for e in report["errors"]] == [
        (3, "display_name", "102"),
        (4, "extension", "101"),
    ]
    assert report["errors"][1]["message"] == "Extension 101 is also on line 2."
    assert report["committed"] is False and not Extension.objects.exists()
    # A dry run of the same file says the same.
    assert post_csv(api, import_url(trunk, "?dry_run=true"), text).status_code == 400


def test_500_rows_per_call(api, trunk):
    def rows(n: int) -> str:
        return HEADER + "".join(f"{2000 + i},Desk {i},,,\n" for i in range(n))

    ok = post_csv(api, import_url(trunk, "?dry_run=1"), rows(500))
    assert ok.status_code == 200 and ok.json()["created"] == 500
    too_many = post_csv(api, import_url(trunk), rows(501))
    assert too_many.status_code == 413
    assert too_many.json()["message"].startswith("The file has more than 500 rows")
    assert too_many.json()["extra"] == {"code": "too_many_rows", "max_rows": 500}
    assert not Extension.objects.exists()
    huge = post_csv(api, import_url(trunk), HEADER + "1,x,,," + " " * (1024 * 1024) + "\n")
    assert huge.status_code == 413


def test_replace_mode_over_the_api(api, trunk, guide_extensions):
    body = post_csv(
        api, import_url(trunk, "?mode=replace"), HEADER + "102,Support,John Smith,Support,support|tech\n"
    )
    assert body.status_code == 200 and (body.json()["deleted"], body.json()["unchanged"]) == (1, 1)
    assert list(Extension.objects.values_list("number", flat=True)) == ["102"]
    assert post_csv(api, import_url(trunk, "?mode=append"), GUIDE_CSV).status_code == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (GUIDE_CSV.encode("utf-16"), "UTF-16"),
        ("extension,display_name\n101,Caf\xe9\n".encode("latin-1"), "not UTF-8"),
        (b"name\nSales\n", "missing the required column"),
        (b"", "Send the CSV file as the request body"),
    ],
)
def test_unreadable_bodies_are_400(api, trunk, body, message):
    response = post_csv(api, import_url(trunk), body)
    assert response.status_code == 400 and message in response.json()["message"]


def test_import_needs_text_csv(api, trunk):
    response = api.post(import_url(trunk), {"csv": GUIDE_CSV}, format="json")
    assert response.status_code == 415
    assert not Extension.objects.exists()


# --- export ------------------------------------------------------------------------------------
def test_export_is_the_import_format(api, trunk, guide_extensions):
    response = api.get(export_url(trunk))
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(response.streaming_content).decode().replace("\r\n", "\n") == GUIDE_CSV
    assert api.get(export_url(trunk), HTTP_ACCEPT="text/csv").status_code == 200


# --- another workspace -------------------------------------------------------------------------
def test_other_workspace_trunk_and_extension_ids_are_404(api, trunk, other_trunk, foreign_extension):
    before = snapshot()
    theirs = [
        ("get", list_url(other_trunk), None),
        ("post", list_url(other_trunk), {"extension": "999", "display_name": "x"}),
        ("get", detail_url(other_trunk, foreign_extension), None),
        ("put", detail_url(other_trunk, foreign_extension), {"extension": "201", "display_name": "x"}),
        ("patch", detail_url(other_trunk, foreign_extension), {"display_name": "x"}),
        ("delete", detail_url(other_trunk, foreign_extension), None),
        # Their extension id under our own trunk.
        ("get", detail_url(trunk, foreign_extension), None),
        ("put", detail_url(trunk, foreign_extension), {"extension": "201", "display_name": "x"}),
        ("patch", detail_url(trunk, foreign_extension), {"display_name": "x"}),
        ("delete", detail_url(trunk, foreign_extension), None),
        ("get", export_url(other_trunk), None),
    ]
    for method, url, data in theirs:
        response = getattr(api, method)(url, data, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json() == {"message": "Not found.", "extra": {}}
    for query in ("", "?dry_run=1", "?mode=replace"):
        assert post_csv(api, import_url(other_trunk, query), GUIDE_CSV).status_code == 404
    assert snapshot() == before


def test_missing_and_foreign_trunks_answer_the_same(api, other_trunk):
    theirs = api.get(list_url(other_trunk))
    missing = api.get(f"/api/v1/trunks/{other_trunk.pk + 10_000}/extensions/")
    assert theirs.status_code == missing.status_code == 404 and theirs.json() == missing.json()


def test_lists_do_not_leak(api, trunk, guide_extensions, foreign_extension):
    numbers = [e["extension"] for e in api.get(list_url(trunk)).json()["results"]]
    assert numbers == ["101", "102"]
    assert api.get(list_url(trunk), {"search": "Globex"}).json()["count"] == 0
    assert b"Globex" not in b"".join(api.get(export_url(trunk)).streaming_content)


def test_other_workspace_sees_only_its_own(other_api, other_trunk, guide_extensions, foreign_extension):
    assert [e["extension"] for e in other_api.get(list_url(other_trunk)).json()["results"]] == ["201"]


# --- roles -------------------------------------------------------------------------------------
def test_viewer_key_reads_but_cannot_write(tenant, trunk, guide_extensions):
    viewer = api_client_for(tenant, Role.VIEWER)
    sales = guide_extensions[0]
    before = snapshot()
    assert viewer.get(list_url(trunk)).status_code == 200
    assert viewer.get(detail_url(trunk, sales)).status_code == 200
    assert viewer.get(export_url(trunk)).status_code == 200
    for response in (
        viewer.post(list_url(trunk), {"extension": "103", "display_name": "x"}, format="json"),
        viewer.put(detail_url(trunk, sales), {"extension": "101", "display_name": "x"}, format="json"),
        viewer.patch(detail_url(trunk, sales), {"display_name": "x"}, format="json"),
        viewer.delete(detail_url(trunk, sales)),
        post_csv(viewer, import_url(trunk), GUIDE_CSV + "103,New,,,\n"),
        post_csv(viewer, import_url(trunk, "?mode=replace"), HEADER + "999,Only,,,\n"),
    ):
        assert response.status_code == 403
    assert snapshot() == before


def test_manager_key_may_write(tenant, trunk):
    manager = api_client_for(tenant, Role.MANAGER)
    assert post_csv(manager, import_url(trunk), GUIDE_CSV).status_code == 200
    assert (
        manager.post(list_url(trunk), {"extension": "103", "display_name": "x"}, format="json").status_code
        == 201
    )


def test_openapi_schema_has_no_warnings(tmp_path):
    schema = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema))
    text = schema.read_text()
    assert "/api/v1/trunks/{trunk_id}/extensions/import" in text and "text/csv" in text
