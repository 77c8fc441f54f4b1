"""The deployment files are valid: compose parses them, every service has a health check."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SERVICES = {"postgres", "redis", "web", "worker", "beat", "sipserver"}


def compose_command() -> list[str]:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail(
        "neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)"
    )


def test_compose_config_validates():
    result = subprocess.run(
        [*compose_command(), "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"SECRET_KEY": "x" * 50, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) >= SERVICES
    for name in SERVICES:
        assert "test" in services[name].get("healthcheck", {}), name


def test_procfile_names_every_process():
    names = {line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()}
    assert names == {"web", "worker", "beat", "sipserver"}
