"""Every directory page: another workspace's ids are a 404 and change nothing; Viewers only read."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from extensions.models import DirectoryImport, Extension, ImportStatus
from extensions.services import import_job_create
from smartalex.tenancy.models import Role

from .conftest import GUIDE_CSV

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
VALUES = {"number": "999", "display_name": "Hijack", "owner": "", "department": "", "aliases": "hijack"}


@pytest.fixture
def foreign_job(other_trunk, other_tenant):
    return import_job_create(trunk=other_trunk, user=None, data=GUIDE_CSV.encode())


def _file():
    return SimpleUploadedFile("x.csv", GUIDE_CSV.encode(), content_type="text/csv")


def foreign_requests(other_trunk, foreign_extension, foreign_job, own_trunk):
    """(method, url, data) for every view, aimed at the other workspace's objects."""
    t, e, token = other_trunk.pk, foreign_extension.pk, foreign_job.token
    return [
        ("get", reverse("extensions:directory", args=[t]), None),
        ("get", reverse("extensions:try", args=[t]), {"phrase": "gina"}),
        ("get", reverse("extensions:export", args=[t]), None),
        ("post", reverse("extensions:add", args=[t]), VALUES),
        ("get", reverse("extensions:edit", args=[t, e]), None),
        ("post", reverse("extensions:edit", args=[t, e]), VALUES),
        ("post", reverse("extensions:delete", args=[t, e]), None),
        # Their extension under our own trunk's URL is no better.
        ("get", reverse("extensions:edit", args=[own_trunk.pk, e]), None),
        ("post", reverse("extensions:edit", args=[own_trunk.pk, e]), VALUES),
        ("post", reverse("extensions:delete", args=[own_trunk.pk, e]), None),
        ("post", reverse("extensions:import", args=[t]), "file"),
        ("get", reverse("extensions:import-job", args=[t, token]), None),
        ("post", reverse("extensions:import-commit", args=[t, token]), None),
        # Their job under our trunk's URL.
        ("get", reverse("extensions:import-job", args=[own_trunk.pk, token]), None),
        ("post", reverse("extensions:import-commit", args=[own_trunk.pk, token]), None),
    ]


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_other_workspace_ids_are_404_and_nothing_changes(
    owner_client, trunk, other_trunk, foreign_extension, foreign_job, htmx
):
    before = list(Extension.objects.values_list("id", "number", "display_name", "aliases"))
    for method, url, data in foreign_requests(other_trunk, foreign_extension, foreign_job, trunk):
        if data == "file":
            data = {"file": _file(), "mode": "replace"}
        response = getattr(owner_client, method)(url, data or {}, **(HTMX if htmx else {}))
        assert response.status_code == 404, (method, url, response.status_code)
    assert list(Extension.objects.values_list("id", "number", "display_name", "aliases")) == before
    foreign_job.refresh_from_db()
    assert foreign_job.status == ImportStatus.PREVIEWED
    assert DirectoryImport.objects.count() == 1 and not Extension.objects.filter(trunk=trunk).exists()


def test_other_workspace_ids_answer_like_missing_ones(owner_client, other_trunk, foreign_extension):
    theirs = owner_client.get(reverse("extensions:directory", args=[other_trunk.pk]))
    missing = owner_client.get(reverse("extensions:directory", args=[other_trunk.pk + 10_000]))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content


def test_lists_search_export_and_try_it_do_not_leak(owner_client, trunk, guide_extensions, foreign_extension):
    pbx = owner_client.get(reverse("extensions:pbx")).content.decode()
    assert "Main office" in pbx and "Globex main" not in pbx
    table = owner_client.get(reverse("extensions:directory", args=[trunk.pk]), {"q": "Gina"}).content.decode()
    assert "Gina Globex" not in table and "No extension matches" in table
    export = b"".join(
        owner_client.get(reverse("extensions:export", args=[trunk.pk])).streaming_content
    ).decode()
    assert "Globex" not in export and "Sarah Jones" in export
    tried = owner_client.get(reverse("extensions:try", args=[trunk.pk]), {"phrase": "gina globex"}, **HTMX)
    assert "Globex" not in tried.content.decode()


@pytest.fixture
def viewer_client(client, tenant, member_factory):
    client.force_login(member_factory(Role.VIEWER))
    return client


def test_viewer_reads_every_page_without_write_controls(viewer_client, trunk, guide_extensions):
    job = import_job_create(trunk=trunk, user=None, data=GUIDE_CSV.encode())
    assert viewer_client.get(reverse("extensions:pbx")).status_code == 200
    page = viewer_client.get(reverse("extensions:directory", args=[trunk.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and "Sarah Jones" in body
    assert 'id="add-extension"' not in body and 'id="import"' not in body and ">Edit<" not in body
    assert (
        viewer_client.get(reverse("extensions:try", args=[trunk.pk]), {"phrase": "tech"}).status_code == 200
    )
    assert viewer_client.get(reverse("extensions:export", args=[trunk.pk])).status_code == 200
    job_page = viewer_client.get(
        reverse("extensions:import-job", args=[trunk.pk, job.token])
    ).content.decode()
    assert "Preview: nothing has changed yet" in job_page and "commit-import" not in job_page


def test_viewer_cannot_write(viewer_client, trunk, guide_extensions):
    sales = guide_extensions[0]
    job = import_job_create(trunk=trunk, user=None, data=(GUIDE_CSV + "103,Billing,,,\n").encode())
    before = list(Extension.objects.values_list("id", "number", "display_name", "aliases"))
    for url, data in [
        (reverse("extensions:add", args=[trunk.pk]), VALUES),
        (reverse("extensions:edit", args=[trunk.pk, sales.pk]), VALUES),
        (reverse("extensions:delete", args=[trunk.pk, sales.pk]), {}),
        (reverse("extensions:import", args=[trunk.pk]), {"file": _file(), "mode": "replace"}),
        (reverse("extensions:import-commit", args=[trunk.pk, job.token]), {}),
    ]:
        assert viewer_client.post(url, data).status_code == 403, url
    assert list(Extension.objects.values_list("id", "number", "display_name", "aliases")) == before
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED and DirectoryImport.objects.count() == 1


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
def test_managers_and_admins_look_after_the_directory(client, member_factory, trunk, role):
    client.force_login(member_factory(role))
    response = client.post(
        reverse("extensions:add", args=[trunk.pk]), {"number": "101", "display_name": "Sales"}
    )
    assert response.status_code == 302
    client.post(reverse("extensions:import", args=[trunk.pk]), {"file": _file(), "mode": "merge"})
    job = DirectoryImport.objects.get(trunk=trunk)
    assert client.post(reverse("extensions:import-commit", args=[trunk.pk, job.token])).status_code == 302
    assert Extension.objects.filter(trunk=trunk).count() == 2
