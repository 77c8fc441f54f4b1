"""Operator commands, /healthz, production settings, and the embedded default."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from smartalex.health import record_sipserver_heartbeat
from smartalex.tenancy.models import Membership, Role, Tenant
from smartalex.tenancy.services import api_key_authenticate

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db
def test_createworkspace_and_createapikey(capsys):
    call_command("createworkspace", name="Cmd Co", owner_email="boss@cmd.test", password="long-enough-1")
    tenant = Tenant.objects.get(name="Cmd Co")
    assert Membership.objects.get(tenant=tenant).role == Role.OWNER
    capsys.readouterr()
    call_command("createapikey", workspace="cmd co")
    raw = capsys.readouterr().out.strip()
    assert api_key_authenticate(raw_key=raw).tenant == tenant


@pytest.mark.django_db
def test_healthz_reports_database_broker_and_engine(client):
    body = client.get(reverse("healthz")).json()
    assert body["database"]["ok"] and body["broker"]["ok"] and body["ok"]
    assert body["sipserver"]["ok"] is False
    record_sipserver_heartbeat(node="test:1")
    body = client.get(reverse("healthz")).json()
    assert body["sipserver"]["ok"] and body["sipserver"]["node"] == "test:1"


def _env(**extra: str) -> dict:
    # Browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; a deployment never has it.
    dropped = (
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
        "TEST_DB_SUFFIX",
    )
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(extra)
    return env


def test_production_settings_pass_check_deploy():
    env = _env(
        DJANGO_SETTINGS_MODULE="smartalex.settings.production",
        SECRET_KEY="k" * 20 + "Q9x!" * 10,
        ALLOWED_HOSTS="portal.example.com",
        SMARTALEX_VAR_DIR="/tmp/smartalex-deploy-check",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_a_missing_secret_key():
    env = _env(DJANGO_SETTINGS_MODULE="smartalex.settings.production", SECRET_KEY="")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


@pytest.mark.slow
def test_embedded_default_runs_without_postgres_or_redis(tmp_path):
    """SQLite (WAL) and the file-system broker: migrate, a workspace, a task through a worker, /healthz."""
    env = _env(DJANGO_SETTINGS_MODULE="smartalex.settings.dev", SMARTALEX_VAR_DIR=str(tmp_path))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    assert run("migrate", "--noinput").returncode == 0
    journal = subprocess.run(
        [
            "python3",
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1])"
            ".execute('pragma journal_mode').fetchone()[0])",
            str(tmp_path / "smartalex.sqlite3"),
        ],
        capture_output=True,
        text=True,
    )
    assert journal.stdout.strip() == "wal"
    created = run(
        "createworkspace", "--name", "Embedded", "--owner-email", "e@e.test", "--password", "long-enough-1"
    )
    assert created.returncode == 0, created.stderr
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
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = (
            "import django; django.setup(); from smartalex.tenancy.tasks import ping; "
            "print(ping.delay().get(timeout=60))"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.stdout.strip() == "pong", result.stderr[-2000:]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    health = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.test import Client;"
            "print(Client().get('/healthz', SERVER_NAME='127.0.0.1').content.decode())",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    body = json.loads(health.stdout.strip().splitlines()[-1])
    assert body["database"]["ok"] and body["broker"]["ok"], body
