"""Settings → PBX pages: the directory, htmx edits, upload → preview → commit, export, Try it."""

from __future__ import annotations

import codecs
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from extensions.models import DirectoryImport, Extension, ImportStatus
from extensions.rules import ExtensionValues
from extensions.services import BACKGROUND_ROWS, extension_create
from extensions.tasks import directory_import_run

from .conftest import GUIDE_CSV

pytestmark = pytest.mark.django_db
HEADER = "extension,display_name,owner,department,aliases\n"
HTMX = {"HTTP_HX_REQUEST": "true"}


def upload(client, trunk, text: str | bytes, mode: str = "merge", name: str = "directory.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        reverse("extensions:import", args=[trunk.pk]),
        {"file": SimpleUploadedFile(name, data, content_type="text/csv"), "mode": mode},
    )


def job_url(job: DirectoryImport) -> str:
    return reverse("extensions:import-job", args=[job.trunk_id, job.token])


def commit_url(job: DirectoryImport) -> str:
    return reverse("extensions:import-commit", args=[job.trunk_id, job.token])


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_guide_example_end_to_end(owner_client, trunk):
    pbx = owner_client.get(reverse("extensions:pbx"))
    assert pbx.status_code == 200 and "Main office" in text_of(pbx)

    response = upload(owner_client, trunk, GUIDE_CSV, name="guide.csv")
    job = DirectoryImport.objects.get(trunk=trunk)
    assert response.status_code == 302 and response["Location"] == job_url(job)

    preview = text_of(owner_client.get(job_url(job)))
    assert '<strong id="count-created">2</strong> to create' in preview
    assert "Preview: nothing has changed yet" in preview and "Import 2 changes" in preview
    assert "Sarah Jones" in preview and "sarah | sales team" in preview
    assert not Extension.objects.exists()

    response = owner_client.post(commit_url(job))
    assert response.status_code == 302 and response["Location"] == job_url(job)
    done = text_of(owner_client.get(job_url(job)))
    assert 'id="import-done"' in done and '<strong id="count-created">2</strong> created' in done

    directory_url = reverse("extensions:directory", args=[trunk.pk])
    found = text_of(owner_client.get(directory_url, {"q": "Sarah"}, **HTMX))  # the table, as htmx swaps it
    assert "Sarah Jones" in found and "John Smith" not in found and "1 match “Sarah”" in found
    page = text_of(owner_client.get(directory_url, {"q": "Sarah"}))  # and the whole page without JS
    assert 'value="Sarah"' in page and "<td>Sarah Jones</td>" in page and "<td>John Smith</td>" not in page

    export = owner_client.get(reverse("extensions:export", args=[trunk.pk]))
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="main-office-extensions.csv"' in export["Content-Disposition"]
    exported = b"".join(export.streaming_content).decode()
    assert exported.replace("\r\n", "\n") == GUIDE_CSV

    assert re.search(r'class="extension-count">2', text_of(owner_client.get(reverse("extensions:pbx"))))


def test_broken_rows_are_all_shown_and_nothing_is_imported(owner_client, trunk):
    text = HEADER + "101,Sales,,,sarah\n1 01,Bad,,,\n102,,,,\n101,Twice,,,\n103,Desk,,,SARAH\n"
    upload(owner_client, trunk, text)
    job = DirectoryImport.objects.get(trunk=trunk)
    assert job.status == ImportStatus.REJECTED
    page = text_of(owner_client.get(job_url(job)))
    assert "Nothing was imported" in page and "4 problems in the file" in page
    for line, column, message in [
        (3, "extension", "Extension “1 01” must be digits"),
        (4, "display_name", "Display name is required."),
        (5, "extension", "Extension 101 is also on line 2."),
        (6, "aliases", "Alias “SARAH” is also on extension 101 (line 2)."),
    ]:
        assert re.search(
            rf"<td>{line}</td><td>{column}</td><td><code>[^<]*</code></td><td>{re.escape(message)}", page
        )
    assert "commit-import" not in page
    assert owner_client.post(commit_url(job)).status_code == 302
    assert not Extension.objects.exists()


def test_double_submit_of_commit_imports_once(owner_client, trunk):
    upload(owner_client, trunk, GUIDE_CSV)
    job = DirectoryImport.objects.get(trunk=trunk)
    first = owner_client.post(commit_url(job), **HTMX)
    second = owner_client.post(commit_url(job), **HTMX)
    assert first.status_code == second.status_code == 200
    assert 'id="import-done"' in text_of(first) and 'id="import-done"' in text_of(second)
    assert Extension.objects.filter(trunk=trunk).count() == 2
    job.refresh_from_db()
    assert job.status == ImportStatus.COMMITTED and job.result["created"] == 2


def test_replace_mode_previews_and_applies_deletions(owner_client, trunk, guide_extensions):
    upload(owner_client, trunk, HEADER + "102,Support,John Smith,Support,support|tech\n", mode="replace")
    job = DirectoryImport.objects.get(trunk=trunk)
    preview = text_of(owner_client.get(job_url(job)))
    assert '<strong id="count-deleted">1</strong> to delete' in preview
    assert '<tr class="change-delete"><td>—</td><td><code>101</code></td>' in preview
    owner_client.post(commit_url(job))
    assert list(Extension.objects.filter(trunk=trunk).values_list("number", flat=True)) == ["102"]


def test_update_preview_shows_old_and_new(owner_client, trunk, guide_extensions):
    upload(owner_client, trunk, HEADER + "101,Sales desk,Sarah Jones,Sales,sarah|sales team\n")
    preview = text_of(owner_client.get(job_url(DirectoryImport.objects.get(trunk=trunk))))
    assert 'Display name: <span class="old">Sales</span> → <span class="new">Sales desk</span>' in preview


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GUIDE_CSV.encode("utf-16"), "The file is UTF-16 encoded"),
        ("extension,display_name\n101,Caf\xe9\n".encode("latin-1"), "line 2 has a byte (0xE9)"),
        (b"name,owner\nSales,Sarah\n", "missing the required column extension"),
    ],
)
def test_unreadable_files_are_refused_on_the_page(owner_client, trunk, data, message):
    response = upload(owner_client, trunk, data)
    assert response.status_code == 400 and message in text_of(response)
    assert not DirectoryImport.objects.exists()


def test_large_file_goes_to_the_worker_with_a_progress_bar(owner_client, trunk):
    rows = BACKGROUND_ROWS + 200
    text = HEADER + "".join(f"{5000 + i},Desk {i},,,\n" for i in range(rows))
    upload(owner_client, trunk, text)
    job = DirectoryImport.objects.get(trunk=trunk)
    assert job.background and job.status == ImportStatus.VALIDATING

    polling = owner_client.get(job_url(job), **HTMX)
    body = text_of(polling)
    assert "<html" not in body and 'hx-trigger="every 1s"' in body and "<progress" in body

    directory_import_run.apply(args=[job.pk]).get()
    ready = text_of(owner_client.get(job_url(job), **HTMX))
    assert "every 1s" not in ready and f'<strong id="count-created">{rows}</strong> to create' in ready
    assert "The first 1000 changes are listed" in ready

    queued = text_of(owner_client.post(commit_url(job), **HTMX))
    assert 'data-status="committing"' in queued and 'hx-trigger="every 1s"' in queued
    directory_import_run.apply(args=[job.pk]).get()
    assert 'id="import-done"' in text_of(owner_client.get(job_url(job), **HTMX))
    assert Extension.objects.filter(trunk=trunk).count() == rows


def test_directory_search_and_paging(owner_client, trunk):
    for i in range(60):
        extension_create(trunk=trunk, values=ExtensionValues(str(200 + i), f"Desk {i}", department="Ops"))
    extension_create(trunk=trunk, values=ExtensionValues("1000", "Board room", aliases=("boardroom",)))
    url = reverse("extensions:directory", args=[trunk.pk])
    first = text_of(owner_client.get(url))
    assert first.count('<tr id="extension-') == 50 and "Page 1 of 2" in first
    assert '<strong id="count-extensions">61</strong>' in first
    second = text_of(owner_client.get(url, {"page": 2}, **HTMX))
    assert "<html" not in second and second.count('<tr id="extension-') == 11 and "Board room" in second
    searched = text_of(owner_client.get(url, {"q": "boardroom"}, **HTMX))
    assert searched.count('<tr id="extension-') == 1 and "Board room" in searched


def test_add_with_htmx_shows_inline_errors_then_the_new_row(owner_client, trunk, guide_extensions):
    url = reverse("extensions:add", args=[trunk.pk])
    bad = owner_client.post(url, {"number": "101", "display_name": "", "aliases": "tech"}, **HTMX)
    body = text_of(bad)
    assert bad.status_code == 200 and "<html" not in body
    assert "This field is required." in body  # display name, from the form
    assert Extension.objects.filter(trunk=trunk).count() == 2

    taken = text_of(owner_client.post(url, {"number": "101", "display_name": "Other"}, **HTMX))
    assert "Extension 101 already exists on this trunk." in taken

    alias = text_of(
        owner_client.post(url, {"number": "103", "display_name": "Desk", "aliases": "Tech"}, **HTMX)
    )
    assert "Alias “Tech” is already used by extension 102." in alias

    good = text_of(
        owner_client.post(
            url, {"number": "103", "display_name": "Billing", "aliases": "billing, accounts"}, **HTMX
        )
    )
    assert "Extension 103 added." in good and 'hx-swap-oob="true"' in good and "Billing" in good
    assert Extension.objects.get(trunk=trunk, number="103").aliases == ["billing", "accounts"]


def test_add_without_javascript(owner_client, trunk):
    url = reverse("extensions:add", args=[trunk.pk])
    response = owner_client.post(url, {"number": "101", "display_name": "Sales"})
    assert response.status_code == 302
    bad = owner_client.post(url, {"number": "10 1", "display_name": "Sales"})
    assert bad.status_code == 400 and "<html" in bad.content.decode() and "must be digits" in text_of(bad)


def test_edit_inline_and_without_javascript(owner_client, trunk, guide_extensions):
    sales = guide_extensions[0]
    url = reverse("extensions:edit", args=[trunk.pk, sales.pk])
    form = text_of(owner_client.get(url, **HTMX))
    assert form.strip().startswith('<tr id="extension-') and 'value="sarah, sales team"' in form

    bad = text_of(owner_client.post(url, {"number": "102", "display_name": "Sales"}, **HTMX))
    assert 'class="editing"' in bad and "Extension 102 already exists" in bad
    sales.refresh_from_db()
    assert sales.number == "101"

    saved = text_of(
        owner_client.post(
            url, {"number": "101", "display_name": "Sales desk", "owner": "Sarah Jones"}, **HTMX
        )
    )
    assert "editing" not in saved and "<td>Sales desk</td>" in saved
    sales.refresh_from_db()
    assert (sales.display_name, sales.aliases) == ("Sales desk", [])

    full = owner_client.get(url)
    assert full.status_code == 200 and "<html" in full.content.decode() and 'class="editing"' in text_of(full)
    assert owner_client.post(url, {"number": "101", "display_name": "Sales"}).status_code == 302


def test_delete_inline_and_without_javascript(owner_client, trunk, guide_extensions):
    sales, support = guide_extensions
    table = text_of(owner_client.post(reverse("extensions:delete", args=[trunk.pk, sales.pk]), **HTMX))
    assert 'id="directory-table"' in table and "Sarah Jones" not in table and "John Smith" in table
    response = owner_client.post(reverse("extensions:delete", args=[trunk.pk, support.pk]))
    assert response.status_code == 302
    assert not Extension.objects.filter(trunk=trunk).exists()


def test_try_it_ranks_candidates(owner_client, trunk, guide_extensions):
    url = reverse("extensions:try", args=[trunk.pk])
    sure = text_of(owner_client.get(url, {"phrase": "can I talk to Sara in sales"}, **HTMX))
    assert "<html" not in sure and "Transfers to 101 · Sales" in sure
    assert 'first name “Sarah” <span class="muted">from “sara”</span>' in sure
    number = text_of(owner_client.get(url, {"phrase": "extension one oh two"}, **HTMX))
    assert "Transfers to 102" in number
    nothing = text_of(owner_client.get(url, {"phrase": "banana helicopter"}, **HTMX))
    assert "No extension fits" in nothing and "Transfers to" not in nothing
    extension_create(trunk=trunk, values=ExtensionValues("103", "Sarah Lee", "Sarah Lee", "Support"))
    both = text_of(owner_client.get(url, {"phrase": "sarah"}))
    assert "<html" in owner_client.get(url, {"phrase": "sarah"}).content.decode()
    assert "More than one extension fits" in both


def test_export_for_excel_has_a_bom(owner_client, trunk, guide_extensions):
    response = owner_client.get(reverse("extensions:export", args=[trunk.pk]), {"bom": "1"})
    content = b"".join(response.streaming_content)
    assert content.startswith(codecs.BOM_UTF8) and content[3:].decode().startswith("extension,display_name")


def test_empty_workspace_explains_what_to_do(owner_client):
    page = text_of(owner_client.get(reverse("extensions:pbx")))
    assert "No trunks yet" in page


def test_anonymous_is_sent_to_login(client, trunk):
    response = client.get(reverse("extensions:directory", args=[trunk.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]
