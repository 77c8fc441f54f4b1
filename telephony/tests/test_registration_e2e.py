"""A PBX registers through the whole system: engine → Celery → worker → trunk status.

Real parts: the engine on 127.0.0.1 sockets, sipp and pyVoIP as the PBX, a Celery worker
process on the test PostgreSQL with Redis as the broker.
"""

import subprocess
import time
from pathlib import Path

import pytest

from telephony.config import load_config_closing_connection
from telephony.tests.support import processes
from telephony.tests.support.engine_runner import EngineThread
from trunks.config_version import config_version
from trunks.models import RegistrationState, TrunkStatus
from trunks.services import TrunkSettings, trunk_create, trunk_suspend

DATA = Path(__file__).parent / "data" / "sipp"
PASSWORD = "a-very-long-pass-0001"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker(tmp_path):
    with processes.private_celery_worker(tmp_path / "worker.log") as process:
        yield process


@pytest.fixture
def engine(tmp_path, worker, trunk):
    thread = EngineThread(
        tmp_path, load=load_config_closing_connection, read_version=config_version, tls=False, celery=True
    ).start()
    yield thread
    thread.stop()


@pytest.fixture
def trunk(tenant):
    trunk, _ = trunk_create(
        tenant=tenant,
        values=TrunkSettings(name="Main PBX", pbx_domain="pbx.acme.test"),
        username="user0001",
        password=PASSWORD,
    )
    return trunk


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def sipp_register(engine, tmp_path, password=PASSWORD, transport="u1"):
    users = tmp_path / "users.csv"
    users.write_text(
        f"SEQUENTIAL\nuser0001;127.0.0.1;[authentication username=user0001 password={password}]\n"
    )
    return subprocess.run(
        [
            "sipp",
            f"127.0.0.1:{engine.udp[1]}",
            "-sf",
            str(DATA / "reg_auth.xml"),
            "-inf",
            str(users),
            "-m",
            "1",
            "-t",
            transport,
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-nostdin",
            "-timeout",
            "10",
            "-timeout_error",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def status(trunk):
    return TrunkStatus.objects.get(trunk=trunk)


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_registration_shows_registered_through_the_worker(engine, trunk, tmp_path, transport):
    started = time.monotonic()
    assert sipp_register(engine, tmp_path, transport=transport).returncode == 0
    assert wait_for(lambda: status(trunk).state == RegistrationState.REGISTERED)
    elapsed = time.monotonic() - started
    current = status(trunk)
    assert current.transport == {"u1": "udp", "t1": "tcp"}[transport] and current.user_agent == "SIPp"
    assert current.source.startswith("127.0.0.1:")
    print(f"registered → status in {elapsed:.2f} s")


def test_wrong_password_shows_the_reason(engine, trunk, tmp_path):
    assert sipp_register(engine, tmp_path, password="wrong-password-123").returncode != 0
    assert wait_for(lambda: status(trunk).last_failure == "wrong password")
    assert status(trunk).state == RegistrationState.NOT_REGISTERED


def test_pyvoip_registers(engine, trunk):
    from pyVoIP.VoIP import PhoneStatus, VoIPPhone

    phone = VoIPPhone("127.0.0.1", engine.udp[1], "user0001", PASSWORD, myIP="127.0.0.1", sipPort=25998)
    phone.start()
    try:
        assert wait_for(lambda: phone.get_status() == PhoneStatus.REGISTERED, timeout=10)
        assert wait_for(lambda: status(trunk).state == RegistrationState.REGISTERED)
        assert "pyVoIP" in status(trunk).user_agent
    finally:
        phone.stop()


def test_suspension_reaches_the_engine_within_two_seconds(engine, trunk, tmp_path):
    assert sipp_register(engine, tmp_path).returncode == 0
    trunk_suspend(trunk=trunk)
    started = time.monotonic()
    assert wait_for(lambda: engine.engine.config.trunks[trunk.pk].suspended, timeout=5)
    assert time.monotonic() - started < 2.0
    assert sipp_register(engine, tmp_path).returncode != 0  # 403 Trunk suspended
