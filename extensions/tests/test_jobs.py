"""Preview → commit jobs: idempotent commits, background imports, progress, and stale previews."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import pytest
from django.utils import timezone

from extensions.csv_format import CsvFileError
from extensions.models import DirectoryImport, Extension, ImportStatus
from extensions.rules import ExtensionValues
from extensions.services import (
    BACKGROUND_ROWS,
    extension_create,
    import_job_commit,
    import_job_create,
    import_job_progress,
)
from extensions.tasks import directory_import_run

from .conftest import GUIDE_CSV

pytestmark = pytest.mark.django_db
HEADER = "extension,display_name,owner,department,aliases\n"


def big_file(rows: int, start: int = 10000) -> bytes:
    lines = [HEADER]
    lines += [f"{start + i},Desk {i},Owner {i},Dept {i % 20},desk {i}|seat {i}\n" for i in range(rows)]
    return "".join(lines).encode()


def test_small_file_is_previewed_at_once(trunk, owner):
    job = import_job_create(trunk=trunk, user=owner, data=GUIDE_CSV.encode(), filename="guide.csv")
    assert job.status == ImportStatus.PREVIEWED and not job.background
    assert (job.preview["created"], job.preview["rows"]) == (2, 2)
    assert job.content == GUIDE_CSV and job.directory_fingerprint
    assert not Extension.objects.exists()  # a preview writes nothing


def test_commit_applies_and_empties_the_stored_file(trunk, owner):
    job = import_job_commit(job=import_job_create(trunk=trunk, user=owner, data=GUIDE_CSV.encode()))
    assert job.status == ImportStatus.COMMITTED and job.committed_at is not None
    assert (job.result["created"], job.result["committed"]) == (2, True)
    assert job.content == ""
    assert Extension.objects.filter(trunk=trunk).count() == 2


def test_second_commit_of_the_same_preview_imports_nothing_more(trunk, owner):
    job = import_job_create(trunk=trunk, user=owner, data=GUIDE_CSV.encode())
    stale_copy = DirectoryImport.objects.get(pk=job.pk)  # what a double-click's request loaded
    first = import_job_commit(job=job)
    second = import_job_commit(job=stale_copy)
    assert first.status == second.status == ImportStatus.COMMITTED
    assert second.result == first.result
    assert Extension.objects.filter(trunk=trunk).count() == 2


def test_file_with_errors_is_rejected_and_cannot_be_committed(trunk, owner):
    job = import_job_create(trunk=trunk, user=owner, data=(HEADER + "101,,,,\n102,Ok,,,\n").encode())
    assert job.status == ImportStatus.REJECTED and job.content == ""
    assert job.preview["error_count"] == 1
    assert import_job_commit(job=job).status == ImportStatus.REJECTED
    assert not Extension.objects.exists()


def test_whole_file_problems_create_no_job(trunk, owner):
    with pytest.raises(CsvFileError):
        import_job_create(trunk=trunk, user=owner, data=b"display_name\nSales\n")
    with pytest.raises(CsvFileError):
        import_job_create(
            trunk=trunk, user=owner, data="extension,display_name\n101,Caf\xe9\n".encode("latin-1")
        )
    assert not DirectoryImport.objects.exists()


def test_directory_changed_after_preview_refuses_commit(trunk, owner):
    job = import_job_create(trunk=trunk, user=owner, data=GUIDE_CSV.encode())
    extension_create(trunk=trunk, values=ExtensionValues("101", "Added meanwhile"))
    job = import_job_commit(job=job)
    assert job.status == ImportStatus.FAILED and "changed after this preview" in job.message
    assert list(Extension.objects.values_list("display_name", flat=True)) == ["Added meanwhile"]


def test_expired_preview_cannot_be_committed(trunk, owner):
    job = import_job_create(trunk=trunk, user=owner, data=GUIDE_CSV.encode())
    DirectoryImport.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=25))
    job.refresh_from_db()
    job = import_job_commit(job=job)
    assert job.status == ImportStatus.FAILED and "expired" in job.message
    assert not Extension.objects.exists()


def test_large_file_is_checked_and_imported_by_the_task(trunk, owner):
    data = big_file(BACKGROUND_ROWS + 500)
    job = import_job_create(trunk=trunk, user=owner, data=data, filename="big.csv")
    assert job.background and job.status == ImportStatus.VALIDATING
    assert import_job_progress(job=job)["phase"] == "waiting"

    directory_import_run.apply(args=[job.pk]).get()
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED
    assert job.preview["created"] == BACKGROUND_ROWS + 500 and len(job.preview["changes"]) == 1000
    assert job.preview["changes_truncated"] is True
    assert not Extension.objects.exists()

    job = import_job_commit(job=job)
    assert job.status == ImportStatus.COMMITTING  # queued for the worker
    directory_import_run.apply(args=[job.pk]).get()
    job.refresh_from_db()
    assert job.status == ImportStatus.COMMITTED and job.result["created"] == BACKGROUND_ROWS + 500
    assert Extension.objects.filter(trunk=trunk).count() == BACKGROUND_ROWS + 500
    ext = Extension.objects.get(trunk=trunk, number="10007")
    assert (ext.display_name, ext.department, ext.aliases) == ("Desk 7", "Dept 7", ["desk 7", "seat 7"])

    # Run again (a redelivered message): nothing happens twice.
    directory_import_run.apply(args=[job.pk]).get()
    assert Extension.objects.filter(trunk=trunk).count() == BACKGROUND_ROWS + 500


def test_progress_is_reported_while_the_task_runs(trunk, owner):
    job = import_job_create(trunk=trunk, user=owner, data=big_file(BACKGROUND_ROWS + 1000))
    directory_import_run.apply(args=[job.pk]).get()
    job.refresh_from_db()
    DirectoryImport.objects.filter(pk=job.pk).update(status=ImportStatus.VALIDATING)
    job.refresh_from_db()
    progress = import_job_progress(job=job)
    # The checking pass reported every 1000 rows; 3000 of ~3000 done.
    assert progress["phase"] == "checking" and progress["done"] == 3000
    assert progress["total"] == BACKGROUND_ROWS + 1000 and progress["percent"] == 99


def test_failing_task_marks_the_job_failed_and_writes_nothing(trunk, owner, monkeypatch):
    job = import_job_commit(job=_previewed_background_job(trunk, owner))

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # Fails after the rows went in (deletes come last): the rollback must take them out again.
    monkeypatch.setattr("extensions.writers._delete", explode)
    result = directory_import_run.apply(args=[job.pk])
    assert result.failed()
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "nothing was imported" in job.message
    assert not Extension.objects.exists()


def _previewed_background_job(trunk, owner) -> DirectoryImport:
    job = import_job_create(trunk=trunk, user=owner, data=big_file(BACKGROUND_ROWS + 1))
    directory_import_run.apply(args=[job.pk]).get()
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED
    return job


def test_task_for_a_missing_job_does_nothing(db):
    assert directory_import_run.apply(args=[987654321]).successful()


def test_memory_stays_bounded_for_a_large_commit(trunk, owner):
    """20,000 rows: the import holds indexes of numbers and aliases, not the rows."""
    rows = 20_000
    data = big_file(rows)
    job = import_job_create(trunk=trunk, user=owner, data=data)
    tracemalloc.start()
    directory_import_run.apply(args=[job.pk]).get()
    job = import_job_commit(job=DirectoryImport.objects.get(pk=job.pk))
    directory_import_run.apply(args=[job.pk]).get()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert Extension.objects.filter(trunk=trunk).count() == rows
    assert peak < 60 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
