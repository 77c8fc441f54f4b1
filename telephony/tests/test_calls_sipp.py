"""sipp as the PBX: it registers the trunk, calls the DID with PCMA audio from a pcap, keys
102 and takes our REFER (checking Refer-To and P-Asserted-Identity in the scenario itself)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from telephony.tests.test_calls_e2e import DID, PASSWORD, events_of, start_engine, trunk, wait_for  # noqa: F401

DATA = Path(__file__).parent / "data" / "sipp"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def engine(tmp_path, trunk):  # noqa: F811
    thread = start_engine(tmp_path)
    yield thread
    thread.stop()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sipp(engine, scenario: str, csv_line: str, tmp_path, port: int, name: str):
    data = tmp_path / f"{name}.csv"
    data.write_text(f"SEQUENTIAL\n{csv_line}\n")
    return subprocess.run(
        [
            "sipp", f"127.0.0.1:{engine.udp[1]}", "-sf", str(DATA / scenario), "-inf", str(data),
            "-m", "1", "-t", "u1", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(port + 2),
            "-nostdin", "-timeout", "20", "-timeout_error", "-trace_err", "-trace_msg", "-message_file", str(tmp_path / f"{name}.msg"), "-error_file", str(tmp_path / f"{name}.err"),
        ],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip


def register(engine, tmp_path, port: int) -> None:
    registered = sipp(
        engine, "reg_auth.xml",
        f"calls0001;127.0.0.1;[authentication username=calls0001 password={PASSWORD}]", tmp_path, port, "reg",
    )  # fmt: skip
    assert registered.returncode == 0, registered.stdout[-2000:]


def test_sipp_pbx_registers_calls_keys_102_and_is_referred(engine, tmp_path):
    port = free_udp_port()
    register(engine, tmp_path, port)
    called = sipp(engine, "call_dtmf_refer.xml", DID.lstrip("+"), tmp_path, port, "call")
    errors = (tmp_path / "call.err").read_text() if (tmp_path / "call.err").exists() else ""
    assert called.returncode == 0, called.stdout[-3000:] + errors
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    assert ended["outcome"] == "transferred" and ended["dtmf"] == "102"
    assert events_of(engine, "CallAnswered")[0]["codec"] == "PCMA"


def test_sipp_unknown_did_gets_404(engine, tmp_path):
    port = free_udp_port()
    register(engine, tmp_path, port)
    result = sipp(engine, "call_unknown_did.xml", "27115559999", tmp_path, port, "unknown")
    assert result.returncode == 0, result.stdout[-2000:]
    assert not events_of(engine, "CallStarted")
