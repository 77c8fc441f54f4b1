"""Faults on real processes: `kill -9` of a sipserver, its PostgreSQL and its Redis going away,
two engines sharing a port, a Celery worker killed mid-import. Every service here is PRIVATE (its
own redis-server and PostgreSQL cluster on free ports): the shared ones serve other engineers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from telephony.tests.hardening.support import (
    PYTHON,
    ROOT,
    Stack,
    UdpPhone,
    free_port,
    sipp_register,
    wait_for,
    write_users,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

COUNT = 1000
USERS = [
    (f"fault{i:04d}", f"faultpass-{i:04d}")  # what bench/make_trunks.py creates
    for i in range(1, COUNT + 1)
]


@pytest.fixture(scope="module")
def stack():
    stack = Stack.create()
    try:
        stack.seed(COUNT, user_prefix="fault", pass_prefix="faultpass-")
        yield stack
    finally:
        stack.close()


@pytest.fixture
def users_csv(stack, tmp_path):
    return write_users(tmp_path / "users.csv", USERS)


@pytest.fixture
def clean_bindings(stack):
    stack.client().flushdb()
    yield


def test_kill_9_loses_no_binding(stack, users_csv, clean_bindings):
    port = free_port()
    first = stack.sipserver(port, "kill9-first").start()
    try:
        run = sipp_register(port, users_csv, count=COUNT, rate=150)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert stack.binding_count() == COUNT  # every 200 OK was stored before it was sent
    finally:
        first.kill9()
    assert stack.binding_count() == COUNT
    second = stack.sipserver(port, "kill9-second").start()
    try:
        assert f"restored {COUNT} bindings" in second.log(), second.log()[-2000:]
        # The restarted engine serves refreshes from what it restored.
        again = sipp_register(port, write_users(users_csv.parent / "few.csv", USERS[:20]), count=20)
        assert again.returncode == 0, again.stdout[-2000:]
        assert stack.binding_count() == COUNT
    finally:
        second.stop()


def test_redis_down_answers_503_and_recovers(stack, clean_bindings):
    port = free_port()
    server = stack.sipserver(port, "redis-down").start()
    user, password = USERS[0]
    phone = UdpPhone(("127.0.0.1", port))
    try:
        ok, _ = phone.login(user, password)
        assert ok.status == 200
        stack.redis.stop()
        refused, _ = phone.login(user, password)
        assert refused.status == 503, refused
        assert refused.first("Retry-After") is not None
        other_user, other_password = USERS[1]
        assert phone.login(other_user, other_password)[0].status == 503
        assert server.process.poll() is None  # still running
        stack.redis.start()  # same port, empty: what the engine could not store is not there
        back = wait_for(
            lambda: phone.login(other_user, other_password)[0].status == 200, timeout=30, interval=0.5
        )
        assert back, server.log()[-3000:]
        stored = [m.decode() for m in stack.client().zrange("loc:expiry", 0, -1)]
        assert len(stored) == 1 and stored[0].split("|", 1)[1].startswith(f"sip:{other_user}@")
    finally:
        phone.close()
        server.stop()
        if not stack.redis.ping():
            stack.redis.start()


def _bump_config_version(stack: Stack) -> None:
    stack.manage("shell", "-c", "from trunks.config_version import _bump; _bump()")


def test_postgres_down_serves_from_the_snapshot_and_reloads_when_back(stack, clean_bindings):
    port = free_port()
    server = stack.sipserver(port, "pg-down").start()
    phone = UdpPhone(("127.0.0.1", port))
    try:
        stack.pg.stop()
        _bump_config_version(stack)  # makes the engine try to reload, and fail
        assert wait_for(lambda: "configuration reload failed" in server.log(), timeout=20), server.log()[
            -2000:
        ]
        # REGISTER needs no PostgreSQL: answered from the in-memory configuration, and stored.
        user, password = USERS[2]
        ok, _ = phone.login(user, password)
        assert ok.status == 200
        assert phone.login(user, "wrong-password-000000000")[0].status == 403
        assert phone.login("not-a-trunk", password)[0].status == 403
        assert stack.binding_count() == 1  # exactly the one 200, nothing else
        stack.pg.start()
        create = (
            "from smartalex.tenancy.models import Tenant\n"
            "from trunks.services import TrunkSettings, trunk_create\n"
            "t = Tenant.objects.get(name='Benchmark')\n"
            "trunk_create(tenant=t, values=TrunkSettings(name='after', pbx_domain='pbx.after.test'),"
            " username='afterpg01', password='after-password-000000001')\n"
        )
        stack.manage("shell", "-c", create)
        back = wait_for(
            lambda: phone.login("afterpg01", "after-password-000000001")[0].status == 200,
            timeout=30,
            interval=0.5,
        )
        assert back, server.log()[-3000:]
    finally:
        phone.close()
        server.stop()
        if not (stack.pg.datadir / "postmaster.pid").exists():
            stack.pg.start()


def test_two_engines_on_one_port_survive_one_kill(stack, users_csv, clean_bindings):
    port = free_port()
    first = stack.sipserver(port, "reuse-a").start()
    second = stack.sipserver(port, "reuse-b").start()
    try:
        # Several sipp processes = several source ports, spread over both engines by the kernel.
        batches = [USERS[i * 50 : (i + 1) * 50] for i in range(8)]
        for n, batch in enumerate(batches[:4]):
            run = sipp_register(port, write_users(users_csv.parent / f"a{n}.csv", batch), count=len(batch))
            assert run.returncode == 0, run.stdout[-2000:]
        first.kill9()
        time.sleep(0.5)
        for n, batch in enumerate(batches[4:]):
            run = sipp_register(port, write_users(users_csv.parent / f"b{n}.csv", batch), count=len(batch))
            assert run.returncode == 0, run.stdout[-2000:]
        assert stack.binding_count() == 400
        assert second.process.poll() is None
    finally:
        first.kill9()
        second.stop()


# --- a Celery worker killed in the middle of a 50,000-row import ------------------------------------

IMPORT_ROWS = 50_000


def start_worker(stack: Stack, name: str) -> subprocess.Popen:
    log = open(stack.base / f"{name}.log", "w")  # noqa: SIM115 — lives as long as the worker
    return subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "smartalex", "worker", "--pool", "prefork", "--concurrency", "1",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=stack.env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def pool_children(pid: int) -> list[int]:
    run = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in run.stdout.split()]


def import_state(stack: Stack, job_id: int, trunk_id: int) -> tuple[str, int, dict]:
    import pickle

    import psycopg

    with psycopg.connect(stack.pg.url, autocommit=True) as db:
        status = db.execute(
            "SELECT status FROM extensions_directoryimport WHERE id = %s", (job_id,)
        ).fetchone()[0]
        count = db.execute(
            "SELECT count(*) FROM extensions_extension WHERE trunk_id = %s", (trunk_id,)
        ).fetchone()[0]
    raw = stack.client().get(f":1:extensions:import:{job_id}:progress")
    return status, count, (pickle.loads(raw) if raw else {})


def test_worker_killed_mid_import_leaves_all_or_nothing(stack):
    worker = start_worker(stack, "import-worker")
    try:
        prepared = subprocess.run(
            [PYTHON, "-m", "telephony.tests.hardening.import_child", "prepare", str(IMPORT_ROWS)],
            cwd=ROOT, env=stack.env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert prepared.returncode == 0, prepared.stderr[-3000:]
        ids = json.loads(prepared.stdout.strip().splitlines()[-1])
        job, trunk = ids["job"], ids["trunk"]
        assert ids["background"] is True
        assert wait_for(lambda: import_state(stack, job, trunk)[0] == "previewed", timeout=400, interval=1)
        stack.manage_module("telephony.tests.hardening.import_child", "commit", str(job))

        def under_way() -> bool:
            # In a commit the checked rows stream into the import's transaction (COPY) as they go.
            status, _, progress = import_state(stack, job, trunk)
            return status == "committing" and progress.get("done", 0) >= IMPORT_ROWS // 5

        assert wait_for(under_way, timeout=400, interval=0.2), import_state(stack, job, trunk)
        children = pool_children(worker.pid)
        assert children, "no pool process to kill"
        for child in children:
            os.kill(child, signal.SIGKILL)  # what the OOM killer would do
        status, count, progress = import_state(stack, job, trunk)
        print(f"killed at {progress}; rows visible: {count}")
        assert count == 0  # one transaction: nothing of the half-done import is visible
        # acks_late + reject_on_worker_lost: the task goes back to the queue and runs again.
        assert wait_for(
            lambda: import_state(stack, job, trunk)[0] in ("committed", "failed"), timeout=600, interval=1
        )
        status, count, _ = import_state(stack, job, trunk)
        assert (status, count) == ("committed", IMPORT_ROWS)
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
