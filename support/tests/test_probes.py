"""Probes against a sipp UAS on 127.0.0.1 playing the PBX."""

import socket
import subprocess
import time

import pytest

from support.services import trunk_probe_call, trunk_probe_options
from trunks.tests.factories import set_registered

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pbx():
    """sipp's built-in UAS: answers INVITE with 180 then 200, and OPTIONS with 200."""
    port = free_udp_port()
    process = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/tmp",
    )
    time.sleep(0.5)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def test_test_call_rings_within_three_seconds(trunk, pbx):
    set_registered(trunk, source=pbx)
    event = trunk_probe_call(trunk=trunk, extension="101")
    assert event.kind == "test_call_probe"
    assert event.detail["ok"] is True and event.detail["status"] in (180, 183, 200)
    assert event.detail["latency_ms"] < 3000 and event.detail["extension"] == "101"


def test_probe_without_an_answer_says_so(trunk):
    set_registered(trunk, source=f"127.0.0.1:{free_udp_port()}")
    event = trunk_probe_options(trunk=trunk)
    assert event.detail == {"ok": False, "status": None, "reason": "no answer to OPTIONS", "latency_ms": None}


def test_probe_of_an_unregistered_trunk(trunk):
    assert "has not registered" in trunk_probe_call(trunk=trunk, extension="101").detail["reason"]


def test_options_probe_measures_the_round_trip(trunk, tmp_path):
    from telephony.tests.support.engine_runner import EngineThread

    engine = EngineThread(tmp_path, tls=False).start()  # our engine answers OPTIONS like a PBX would
    try:
        set_registered(trunk, source="{}:{}".format(*engine.udp))
        event = trunk_probe_options(trunk=trunk)
    finally:
        engine.stop()
    assert event.detail["ok"] is True and event.detail["status"] == 200
    assert 0 < event.detail["latency_ms"] < 2000
