"""Real processes for end-to-end tests: a Celery worker on the test database."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_database_env() -> dict[str, str]:
    """The environment a child process needs to use the test run's PostgreSQL database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return dict(
        os.environ, DJANGO_SETTINGS_MODULE="smartalex.settings.test", DATABASE_URL=url, PYTHONUNBUFFERED="1"
    )


def start_celery_worker(log_path: Path, queue: str = "celery") -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 — lives as long as the worker
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "smartalex",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=test_database_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@contextlib.contextmanager
def private_celery_worker(log_path: Path, *, ready_timeout: float = 120) -> Iterator[subprocess.Popen]:
    """A worker reading a queue of its own, to which this process sends every task meanwhile.

    The broker database is shared by every test run on the machine: on the default queue another
    run's worker would take our engine events and apply them to its own database.
    """
    import redis
    from django.conf import settings

    from smartalex.celery import app

    queue = f"test-{uuid.uuid4().hex[:12]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    process = start_celery_worker(log_path, queue)
    try:
        # Figures measured by a test start once the worker listens, not while Django imports.
        deadline = time.monotonic() + ready_timeout
        while process.poll() is None and " ready." not in log_path.read_text():
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert process.poll() is None and " ready." in log_path.read_text(), log_path.read_text()[-3000:]
        yield process
    finally:
        app.conf.task_default_queue = previous
        stop(process)
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue, f"_kombu.binding.{queue}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
