"""Writes for the extension directory: one extension at a time, or a whole CSV file.

Every write tells the SIP engines to reload (they hold the directory in memory for matching).
An import applies all of a file or none of it: rows are staged while they are checked and
applied only when every row passed, in one transaction that holds the trunk's row lock, so two
imports (or an import and an edit) of one trunk never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from smartalex.errors import ApplicationError
from smartalex.tenancy.models import User
from trunks.config_version import config_changed
from trunks.models import SipTrunk

from .csv_format import CsvFileError, decode_upload, estimate_rows, read_header, read_records
from .importing import ImportPlanner, ImportReport, RowLimitExceeded
from .models import DirectoryImport, Extension, ImportMode, ImportStatus
from .rules import ExtensionValues, alias_key, clean_values
from .selectors import directory_fingerprint, directory_snapshot
from .writers import DirectoryWriter

# The product's limit for one API call; the page takes larger files through the worker.
API_MAX_ROWS = 500
API_MAX_BYTES = 1024 * 1024
PAGE_MAX_ROWS = 100_000
PAGE_MAX_BYTES = 20 * 1024 * 1024
# Above this many rows the page checks and imports in the background, with a progress bar.
BACKGROUND_ROWS = 2000
PREVIEW_TTL = timedelta(hours=24)
PROGRESS_TTL_SECONDS = 3600

ProgressCallback = Callable[[str, int], None]


# --- one extension ---------------------------------------------------------------------------
def _checked(values: ExtensionValues) -> ExtensionValues:
    cleaned = clean_values(
        number=values.number,
        display_name=values.display_name,
        owner=values.owner,
        department=values.department,
        aliases=values.aliases,
    )
    if cleaned.values is None:
        first = next(iter(cleaned.errors.values()))[0]
        raise ApplicationError(first, extra={"fields": cleaned.errors})
    return cleaned.values


def _lock_trunk(trunk: SipTrunk) -> None:
    # Serialises directory writes per trunk: alias and number checks cannot race an import.
    SipTrunk.objects.select_for_update().filter(pk=trunk.pk).first()


def _check_free(*, trunk: SipTrunk, values: ExtensionValues, exclude_id: int | None) -> None:
    others = Extension.objects.filter(trunk=trunk).exclude(pk=exclude_id)
    if others.filter(number=values.number).exists():
        raise ApplicationError(
            f"Extension {values.number} already exists on this trunk.",
            extra={"fields": {"extension": [f"Extension {values.number} already exists on this trunk."]}},
        )
    wanted = {alias_key(alias): alias for alias in values.aliases}
    if not wanted:
        return
    for number, aliases in others.exclude(aliases=[]).values_list("number", "aliases").iterator():
        for alias in aliases:
            if alias_key(alias) in wanted:
                message = f"Alias “{wanted[alias_key(alias)]}” is already used by extension {number}."
                raise ApplicationError(message, extra={"fields": {"aliases": [message]}})


def _save(extension: Extension) -> Extension:
    try:
        with transaction.atomic():
            extension.save()
    except IntegrityError as exc:  # a concurrent write took the number after our check
        raise ApplicationError(
            f"Extension {extension.number} already exists on this trunk.",
            extra={"fields": {"extension": ["Already exists on this trunk."]}},
        ) from exc
    config_changed()
    return extension


@transaction.atomic
def extension_create(*, trunk: SipTrunk, values: ExtensionValues) -> Extension:
    values = _checked(values)
    _lock_trunk(trunk)
    _check_free(trunk=trunk, values=values, exclude_id=None)
    extension = Extension(
        tenant_id=trunk.tenant_id,
        trunk=trunk,
        number=values.number,
        display_name=values.display_name,
        owner=values.owner,
        department=values.department,
        aliases=list(values.aliases),
    )
    return _save(extension)


@transaction.atomic
def extension_update(*, extension: Extension, values: ExtensionValues) -> Extension:
    values = _checked(values)
    _lock_trunk(extension.trunk)
    _check_free(trunk=extension.trunk, values=values, exclude_id=extension.pk)
    extension.number = values.number
    extension.display_name = values.display_name
    extension.owner = values.owner
    extension.department = values.department
    extension.aliases = list(values.aliases)
    return _save(extension)


def extension_delete(*, extension: Extension) -> None:
    extension.delete()
    config_changed()


# --- a whole file ----------------------------------------------------------------------------
def _check_mode(mode: str) -> str:
    if mode not in ImportMode.values:
        raise ApplicationError(
            f"Unknown import mode “{mode}”: use “merge” (the default) or “replace”.", extra={"field": "mode"}
        )
    return mode


def _too_many_rows(limit: int, where: str) -> ApplicationError:
    return ApplicationError(
        f"The file has more than {limit:,} rows: {where} takes at most {limit:,} rows at a time.",
        extra={"code": "too_many_rows", "max_rows": limit},
        status_code=413,
    )


class _Discard(Exception):
    """Leaves the import's savepoint, undoing whatever a writer staged."""


def _run_import(
    *,
    trunk: SipTrunk,
    text: str,
    mode: str,
    dry_run: bool,
    max_rows: int,
    on_progress: ProgressCallback | None = None,
    portable_writer: bool = False,
) -> ImportReport:
    """Checks the whole file and, unless `dry_run` or any row is bad, writes all of it.
    Raises RowLimitExceeded past `max_rows`. The caller provides the outer transaction."""
    header, records = read_records(text)
    checking = (lambda done: on_progress("checking", done)) if on_progress else None
    planner = ImportPlanner(
        existing=directory_snapshot(trunk=trunk), mode=mode, max_rows=max_rows, on_progress=checking
    )
    if dry_run:
        return planner.run(header, records)
    report = None
    try:
        # The writer is opened inside the savepoint: leaving with an error discards what it
        # staged, and the savepoint's rollback undoes anything it already wrote.
        with transaction.atomic(), DirectoryWriter.for_trunk(trunk, portable=portable_writer) as writer:
            planner.on_upsert = writer.stage
            report = planner.run(header, records)
            report.dry_run = False
            if not report.ok:
                raise _Discard
            if on_progress:
                on_progress("writing", 0)
            writer.apply(deleted_ids=planner.deleted_ids())
    except _Discard:
        return report
    report.committed = True
    config_changed()
    return report


def extension_import(
    *, trunk: SipTrunk, data: bytes, mode: str = ImportMode.MERGE, dry_run: bool
) -> ImportReport:
    """One API call: at most API_MAX_ROWS rows, checked and (unless a dry run) imported at once.
    A report with errors imported nothing."""
    _check_mode(mode)
    if len(data) > API_MAX_BYTES:
        raise ApplicationError(
            f"The file is larger than {API_MAX_BYTES // 1024} KiB: the API takes at most "
            f"{API_MAX_ROWS} rows per call.",
            extra={"code": "too_large", "max_rows": API_MAX_ROWS},
            status_code=413,
        )
    text = decode_upload(data)
    try:
        with transaction.atomic():
            if not dry_run:
                _lock_trunk(trunk)
            return _run_import(trunk=trunk, text=text, mode=mode, dry_run=dry_run, max_rows=API_MAX_ROWS)
    except RowLimitExceeded as exc:
        raise _too_many_rows(exc.limit, "one API call") from exc


# --- the page: preview, then commit (possibly in the background) -----------------------------
def _progress_key(job_id: int) -> str:
    return f"extensions:import:{job_id}:progress"


def _progress_reporter(job: DirectoryImport) -> ProgressCallback:
    total = max(job.estimated_rows, 1)

    def report(phase: str, done: int) -> None:
        cache.set(_progress_key(job.pk), {"phase": phase, "done": done, "total": total}, PROGRESS_TTL_SECONDS)

    return report


def import_job_progress(*, job: DirectoryImport) -> dict:
    """{"phase", "done", "total", "percent"} of a running job (kept in the cache, because the
    import's own transaction is invisible to other connections until it commits)."""
    progress = cache.get(_progress_key(job.pk)) or {
        "phase": "waiting",
        "done": 0,
        "total": job.estimated_rows,
    }
    total = max(progress["total"], 1)
    # Checking is the first half of the bar when the file is then written, the whole bar otherwise.
    if job.status == ImportStatus.COMMITTING:
        share = 0.5 * progress["done"] / total + (0.5 if progress["phase"] == "writing" else 0.0)
    else:
        share = progress["done"] / total
    return {**progress, "percent": min(99, int(100 * share))}


def import_job_create(
    *, trunk: SipTrunk, user: User | None, data: bytes, filename: str = "", mode: str = ImportMode.MERGE
) -> DirectoryImport:
    """Stores an upload and previews it: at once for a small file, in the worker for a large one.
    Problems with the file as a whole (encoding, header, size) are raised here, before any job."""
    _check_mode(mode)
    if len(data) > PAGE_MAX_BYTES:
        raise CsvFileError(
            f"The file is larger than {PAGE_MAX_BYTES // (1024 * 1024)} MB.", extra={"code": "too_large"}
        )
    text = decode_upload(data)
    read_header(text)
    estimated = estimate_rows(text)
    job = DirectoryImport.objects.create(
        tenant_id=trunk.tenant_id,
        trunk=trunk,
        created_by=user,
        mode=mode,
        filename=filename[:255],
        content=text,
        estimated_rows=estimated,
        background=estimated > BACKGROUND_ROWS,
    )
    if job.background:
        _enqueue(job)
    else:
        import_job_validate(job_id=job.pk)
        job.refresh_from_db()
    return job


def _enqueue(job: DirectoryImport) -> None:
    from .tasks import directory_import_run  # tasks import services

    job_id = job.pk
    transaction.on_commit(lambda: directory_import_run.delay(job_id))


def import_job_validate(*, job_id: int) -> None:
    """The preview: checks every row and records what committing would change. Idempotent."""
    job = DirectoryImport.objects.select_related("trunk").filter(pk=job_id).first()
    if job is None or job.status != ImportStatus.VALIDATING:
        return
    # Taken before reading the directory: an edit made meanwhile makes the commit refuse.
    fingerprint = directory_fingerprint(trunk=job.trunk)
    try:
        report = _run_import(
            trunk=job.trunk,
            text=job.content,
            mode=job.mode,
            dry_run=True,
            max_rows=PAGE_MAX_ROWS,
            on_progress=_progress_reporter(job) if job.background else None,
        )
    except RowLimitExceeded as exc:
        _finish_validation(job, ImportStatus.REJECTED, message=_too_many_rows(exc.limit, "the page").message)
        return
    except CsvFileError as exc:
        _finish_validation(job, ImportStatus.REJECTED, message=exc.message)
        return
    status = ImportStatus.PREVIEWED if report.ok else ImportStatus.REJECTED
    _finish_validation(job, status, report=report, fingerprint=fingerprint)


def _finish_validation(
    job: DirectoryImport,
    status: str,
    *,
    report: ImportReport | None = None,
    fingerprint: str = "",
    message: str = "",
) -> None:
    changes = {
        "status": status,
        "preview": report.to_dict() if report else {},
        "directory_fingerprint": fingerprint,
        "message": message,
        "updated_at": timezone.now(),
    }
    if status != ImportStatus.PREVIEWED:
        changes["content"] = ""  # never committed: nothing to keep
    DirectoryImport.objects.filter(pk=job.pk, status=ImportStatus.VALIDATING).update(**changes)


def import_job_commit(*, job: DirectoryImport) -> DirectoryImport:
    """The Commit button. Only the request that moves the job from PREVIEWED to COMMITTING
    imports; a second click (or a retried request) finds it taken and just shows the result."""
    if job.status == ImportStatus.PREVIEWED and job.created_at < timezone.now() - PREVIEW_TTL:
        DirectoryImport.objects.filter(pk=job.pk, status=ImportStatus.PREVIEWED).update(
            status=ImportStatus.FAILED,
            content="",
            message="This preview has expired: upload the file again.",
            updated_at=timezone.now(),
        )
    claimed = DirectoryImport.objects.filter(pk=job.pk, status=ImportStatus.PREVIEWED).update(
        status=ImportStatus.COMMITTING, updated_at=timezone.now()
    )
    if claimed:
        if job.background:
            _enqueue(job)
        else:
            import_job_apply(job_id=job.pk)
    job.refresh_from_db()
    return job


def import_job_apply(*, job_id: int) -> None:
    """Writes a previewed file: all of it in one transaction, or nothing. Safe to run twice:
    the job row is locked and only a COMMITTING job is applied."""
    with transaction.atomic():
        job = DirectoryImport.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != ImportStatus.COMMITTING:
            return
        trunk = SipTrunk.objects.select_for_update().get(pk=job.trunk_id)
        if directory_fingerprint(trunk=trunk) != job.directory_fingerprint:
            _finish_commit(
                job,
                ImportStatus.FAILED,
                message="The directory changed after this preview, so nothing was imported. "
                "Upload the file again to see a fresh preview.",
            )
            return
        try:
            report = _run_import(
                trunk=trunk,
                text=job.content,
                mode=job.mode,
                dry_run=False,
                max_rows=PAGE_MAX_ROWS,
                on_progress=_progress_reporter(job) if job.background else None,
            )
        except (RowLimitExceeded, CsvFileError):  # the preview passed the same checks
            report = None
        if report is None or not report.ok:  # nothing was written: checks come before writes
            _finish_commit(
                job,
                ImportStatus.FAILED,
                report=report,
                message="The file no longer passes its checks, so nothing was imported.",
            )
            return
        _finish_commit(job, ImportStatus.COMMITTED, report=report)


def _finish_commit(
    job: DirectoryImport, status: str, *, report: ImportReport | None = None, message: str = ""
) -> None:
    job.status = status
    job.result = report.to_dict() if report else {}
    job.message = message
    job.content = ""
    job.committed_at = timezone.now() if status == ImportStatus.COMMITTED else None
    job.save(update_fields=["status", "result", "message", "content", "committed_at", "updated_at"])


def import_job_fail(*, job_id: int, message: str) -> None:
    """Marks an unfinished job as failed, after its transaction rolled back (nothing written)."""
    DirectoryImport.objects.filter(
        pk=job_id, status__in=[ImportStatus.VALIDATING, ImportStatus.COMMITTING]
    ).update(status=ImportStatus.FAILED, message=message[:500], content="", updated_at=timezone.now())


def import_job_run(*, job_id: int) -> None:
    """The worker's entry point: continues a job from wherever it is."""
    job = DirectoryImport.objects.filter(pk=job_id).only("status").first()
    if job is None:
        return
    if job.status == ImportStatus.VALIDATING:
        import_job_validate(job_id=job_id)
    elif job.status == ImportStatus.COMMITTING:
        import_job_apply(job_id=job_id)


def import_jobs_prune(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Deletes old import records (their files are emptied as soon as they finish)."""
    deleted, _ = DirectoryImport.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
