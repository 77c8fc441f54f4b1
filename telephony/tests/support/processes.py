"""Real processes for end-to-end tests: a Celery worker on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
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


def start_celery_worker(log_path: Path) -> subprocess.Popen:
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


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
