"""Real peers for the browser walkthroughs: Chromium, the SIP engine on 127.0.0.1, a Celery worker
process, and sipp playing the customer's PBX.

Fixtures live here so that both walkthrough packages (trunks/ and support/) share them through
their own conftest.py. Events travel the production way: engine → Celery → worker →
trunk_events_apply → PostgreSQL → the page.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from telephony.config import load_config_closing_connection
from telephony.tests.support import processes
from telephony.tests.support.engine_runner import EngineThread
from trunks.config_version import config_version

# Playwright's sync API runs an event loop in the test's thread, where the test also reads the ORM.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
playwright_sync = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
DATA = Path(__file__).parent / "data"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous: two cores are shared by several test runs, and a worker may be busy starting up.
TIMEOUT_MS = 20_000

needs_peers = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]

# A private instance: setting the timeout on the module's `expect` would change other tests too.
expect = playwright_sync.Expect()
expect.set_options(timeout=TIMEOUT_MS)


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# --- Celery: a worker on a queue of our own ------------------------------------------------------


@pytest.fixture
def worker(tmp_path) -> Iterator[subprocess.Popen]:
    with processes.private_celery_worker(tmp_path / "worker.log") as process:
        yield process


@pytest.fixture
def engine(tmp_path, worker) -> Iterator[EngineThread]:
    thread = EngineThread(
        tmp_path, load=load_config_closing_connection, read_version=config_version, tls=False, celery=True
    ).start()
    yield thread
    thread.stop()


def wait_until_engine_knows(engine: EngineThread, username: str) -> None:
    """A new trunk reaches the engine by the config-version poll; a PBX that registers sooner is refused."""
    assert wait_for(lambda: username in engine.engine.config.by_username), f"engine never loaded {username}"


# --- sipp as the customer's PBX ----------------------------------------------------------------

SIPP_TRANSPORTS = {"UDP": "u1", "TCP": "t1"}


class SippPbx:
    """sipp as the customer's PBX, always from one address: the engine takes a call from the
    registration's flow, so the INVITE must leave from where the REGISTER did."""

    def __init__(self, engine: EngineThread, workdir: Path) -> None:
        self.engine = engine
        self.workdir = workdir
        self.port = free_udp_port()
        self.runs = 0

    def _run(self, scenario: str, fields: str, transport: str = "UDP") -> subprocess.CompletedProcess:
        self.runs += 1
        name = f"sipp-{self.runs}-{Path(scenario).stem}"
        users = self.workdir / f"{name}.csv"
        users.write_text(f"SEQUENTIAL\n{fields}\n")
        target = self.engine.tcp if transport == "TCP" else self.engine.udp
        return subprocess.run(
            [
                "sipp", f"127.0.0.1:{target[1]}", "-sf", str(DATA / scenario), "-inf", str(users),
                "-m", "1", "-t", SIPP_TRANSPORTS[transport], "-i", "127.0.0.1", "-p", str(self.port),
                "-mi", "127.0.0.1", "-mp", str(free_udp_port()), "-nostdin", "-timeout", "20",
                "-timeout_error", "-trace_err", "-error_file", str(self.workdir / f"{name}.err"),
            ],
            capture_output=True, text=True, timeout=60, cwd=self.workdir,
        )  # fmt: skip

    def register(
        self, *, username: str, password: str, registrar: str, transport: str = "UDP", expires: int = 3600
    ) -> subprocess.CompletedProcess:
        auth = f"[authentication username={username} password={password}]"
        return self._run("register.xml", f"{username};{registrar};{auth};{expires}", transport)

    def unregister(self, *, username: str, password: str, registrar: str) -> subprocess.CompletedProcess:
        return self.register(username=username, password=password, registrar=registrar, expires=0)

    def call(self, *, did: str, caller: str) -> subprocess.CompletedProcess:
        """A call the engine refuses with 480 (no agent linked); the PBX ACKs it."""
        return self._run("call_rejected.xml", f"{did};{caller}")


@pytest.fixture
def pbx(engine, tmp_path) -> SippPbx:
    return SippPbx(engine, tmp_path)


def sipp_output(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr)[-3000:]


# --- Chromium ----------------------------------------------------------------------------------


@pytest.fixture
def new_page(live_server) -> Iterator[Callable[[], object]]:
    """Opens a page in a context of its own: two people (support and customer) side by side."""
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opened = []

        def open_page():
            context = browser.new_context(
                base_url=live_server.url, viewport={"width": 1280, "height": 1000}, accept_downloads=True
            )
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            opened.append((context, page))
            return page

        yield open_page
        for context, page in opened:
            page.goto("about:blank")  # stop the htmx polling before the server goes away
            context.close()
        browser.close()


def log_in(page, email: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page.locator("header .email")).to_have_text(email)
