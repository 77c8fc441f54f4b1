"""Committed work seen from other connections: simultaneous commits, and a real Celery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from extensions.models import DirectoryImport, Extension, ImportStatus
from extensions.services import BACKGROUND_ROWS, import_job_commit, import_job_create

from .conftest import GUIDE_CSV, make_trunk

ROOT = Path(__file__).resolve().parents[2]
HEADER = "extension,display_name,owner,department,aliases\n"


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_commits_import_once(tenant):
    trunk = make_trunk(tenant)
    job = import_job_create(trunk=trunk, user=None, data=GUIDE_CSV.encode())
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def click() -> None:
        try:
            copy = DirectoryImport.objects.get(pk=job.pk)  # each request loads the job itself
            start.wait()
            outcomes.append(import_job_commit(job=copy).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # The loser sees the winner's work either finished or still running; either way, once.
    assert sorted(outcomes)[0] in (ImportStatus.COMMITTED, ImportStatus.COMMITTING) and len(outcomes) == 2
    job.refresh_from_db()
    assert job.status == ImportStatus.COMMITTED and job.result["created"] == 2
    assert Extension.objects.filter(trunk=trunk).count() == 2


def _wait_for(job: DirectoryImport, status: str, seconds: float = 60) -> DirectoryImport:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == status:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job still {job.status} after {seconds}s, waiting for {status}")


@pytest.fixture
def celery_worker_process():
    """`celery -A smartalex worker --pool solo` on the test database and Redis db 15."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "smartalex.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "smartalex",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield worker
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=5)
    connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_large_import_through_a_real_worker(tenant, celery_worker_process):
    trunk = make_trunk(tenant)
    rows = BACKGROUND_ROWS + 100
    data = (HEADER + "".join(f"{7000 + i},Desk {i},,Ops,\n" for i in range(rows))).encode()
    job = import_job_create(trunk=trunk, user=None, data=data, filename="big.csv")
    assert job.background
    job = _wait_for(job, ImportStatus.PREVIEWED)
    assert job.preview["created"] == rows
    import_job_commit(job=job)
    job = _wait_for(job, ImportStatus.COMMITTED)
    assert job.result["created"] == rows and job.content == ""
    assert Extension.objects.filter(trunk=trunk, department="Ops").count() == rows
    assert celery_worker_process.poll() is None, celery_worker_process.stderr.read().decode()[-2000:]
