"""Background imports of large directory files. Tasks take ids and are safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services import import_job_fail, import_job_run, import_jobs_prune


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def directory_import_run(job_id: int) -> None:
    """Checks (preview) or writes (commit) an uploaded file, whichever the job is waiting for."""
    try:
        import_job_run(job_id=job_id)
    except (OperationalError, InterfaceError):
        if directory_import_run.request.retries >= directory_import_run.max_retries:
            import_job_fail(job_id=job_id, message="The database was unavailable; nothing was imported.")
        raise
    except Exception:
        # The import's transaction rolled back; say so instead of showing a progress bar forever.
        import_job_fail(job_id=job_id, message="The import failed unexpectedly; nothing was imported.")
        raise


@shared_task
def directory_imports_prune() -> int:
    return import_jobs_prune()
