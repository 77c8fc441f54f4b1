"""Calls through Kamailio acting as a proxy in front of two engines (DESIGN.md "Scaling out"):
sipp as the PBX registers through Kamailio, then calls the DID through it. Each engine, the one
that took the REGISTER and the other, challenges the INVITE with 407, takes the credentials and
answers with the agent; RTP flows both ways; ACK and BYE follow the Record-Route through Kamailio
to the engine that answered. An INVITE through Kamailio without credentials is not taken for the
registered trunk's. On 127.0.0.1 only; skipped without kamailio or sipp (docs/interop.md)."""

from __future__ import annotations

import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from telephony.calls import CallSettings
from telephony.config import load_config_closing_connection
from telephony.location import SqliteLocationStore
from telephony.tests.hardening.support import (
    Kamailio,
    SipResponse,
    StoreEngineThread,
    need,
    parse_response,
    sipp_register,
    wait_for,
    write_users,
)
from telephony.tests.test_calls_e2e import DID, PASSWORD, trunk  # noqa: F401 — fixture
from trunks.config_version import config_version

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(300)]

SCENARIO = Path(__file__).resolve().parents[1] / "data" / "sipp" / "call_proxy_auth.xml"


@pytest.fixture
def engines(tmp_path, trunk):  # noqa: F811
    need("kamailio")
    need("sipp")
    store_path = tmp_path / "shared-locations.sqlite3"  # what Redis is in production: shared by both
    threads = []
    for n, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        calls = CallSettings(agent_mode="dtmf", rtp_port_min=38000 + 500 * n, rtp_port_max=38499 + 500 * n)
        threads.append(
            StoreEngineThread(
                tmp_path / name,
                load=load_config_closing_connection,
                read_version=config_version,
                tls=False,
                settings={"calls": calls},
                store_factory=lambda: SqliteLocationStore(store_path),
            ).start()
        )
    yield threads
    for thread in threads:
        thread.stop()


@pytest.fixture
def kamailio(tmp_path, engines):
    proxy = Kamailio(tmp_path, [e.udp for e in engines]).start()
    yield proxy
    proxy.stop()


def events_of(engine, kind: str) -> list[dict]:
    return [e for e in engine.events if e["type"] == kind]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sipp_call(kamailio: Kamailio, tmp_path: Path, *, port: int, engine_set: int, name: str):
    """The PBX's call from `port` (where it registered), sent by Kamailio to dispatcher set
    `engine_set` (one engine)."""
    data = tmp_path / f"{name}.csv"
    credentials = f"[authentication username=calls0001 password={PASSWORD}]"
    data.write_text(f"SEQUENTIAL\n{DID.lstrip('+')};{engine_set};{credentials}\n")
    media = free_udp_port() // 2 * 2
    return subprocess.run(
        ["sipp", f"127.0.0.1:{kamailio.port}", "-sf", str(SCENARIO), "-inf", str(data), "-m", "1",
         "-t", "u1", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(media),
         "-nostdin", "-timeout", "40", "-timeout_error", "-recv_timeout", "15000",
         "-trace_err", "-error_file", str(tmp_path / f"{name}.err"), "-trace_msg", "-message_file", str(tmp_path / f"{name}.msg")],
        capture_output=True, text=True, timeout=90, cwd=tmp_path,
    )  # fmt: skip


def invite_without_credentials(kamailio: Kamailio, engine_set: int) -> SipResponse | None:
    """Another party's INVITE through the same proxy, with no credentials, to one engine."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        call_id, branch = uuid.uuid4().hex, f"z9hG4bK{uuid.uuid4().hex[:16]}"
        sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        sdp += f"m=audio {port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        invite = (
            f"INVITE sip:{DID}@127.0.0.1:{kamailio.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n"
            f"From: <sip:stranger@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\nTo: <sip:{DID}@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:stranger@127.0.0.1:{port}>\r\n"
            f"X-Engine: {engine_set}\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
        )
        sock.sendto(invite.encode(), ("127.0.0.1", kamailio.port))
        try:
            while (response := parse_response(sock.recv(65535))).status < 200:
                pass
        except TimeoutError:
            return None
        to = response.first("To")
        ack = (
            f"ACK sip:{DID}@127.0.0.1:{kamailio.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n"
            f"From: {response.first('From')}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(ack.encode(), ("127.0.0.1", kamailio.port))
        if response.status == 200:  # taken for the trunk's call: end it as a PBX would
            bye = ack.replace("ACK sip:", "BYE sip:", 1).replace("CSeq: 1 ACK", "CSeq: 2 BYE")
            sock.sendto(bye.replace(branch, branch + "b").encode(), ("127.0.0.1", kamailio.port))
        return response


def test_calls_through_kamailio_are_answered_by_either_engine(engines, kamailio, trunk, tmp_path):  # noqa: F811
    users = write_users(tmp_path / "users.csv", [("calls0001", PASSWORD)])
    registered = sipp_register(kamailio.port, users, count=1, rate=1)
    assert registered.returncode == 0, registered.stdout[-2000:] + kamailio.log()[-2000:]
    # Round robin: the 401 came from one engine, the 200 from the other. Behind Kamailio the
    # engines never see the PBX's own port, so the calls may leave from any port.
    home = next(i for i, e in enumerate(engines) if e.engine.registrar.stats.registrations == 1)
    answered = {id(e): [] for e in engines}
    for engine in engines:
        engine.engine.calls.on_answered.append(answered[id(engine)].append)

    # First the engine that did not take the REGISTER, then the one that did.
    for n, index in enumerate((1 - home, home)):
        engine = engines[index]
        called = sipp_call(kamailio, tmp_path, port=free_udp_port(), engine_set=index + 2, name=f"call{n}")
        errors = (tmp_path / f"call{n}.err").read_text() if (tmp_path / f"call{n}.err").exists() else ""
        assert called.returncode == 0, called.stdout[-3000:] + errors + kamailio.log()[-3000:]
        ended = wait_for(lambda e=engine: events_of(e, "CallEnded"), timeout=15)
        assert ended and ended[0]["outcome"] == "caller_hung_up", ended
        started = events_of(engine, "CallStarted")
        assert len(started) == 1 and started[0]["did"] == DID and started[0]["trunk_id"] == trunk.pk
        assert events_of(engine, "CallAnswered")[0]["codec"] == "PCMA"
        stats = answered[id(engine)][0].media.stats
        assert stats.packets_received > 50 and stats.packets_sent > 50, stats  # sipp's pcap; the agent
        # ACK and BYE came back through Kamailio on the recorded route, to the answering engine.
        sip_call_id = started[0]["sip_call_id"]
        routed = re.findall(
            rf"in-dialog (ACK|BYE) {re.escape(sip_call_id)} to sip:\S*@127\.0\.0\.1:(\d+)", kamailio.log()
        )
        assert sorted(routed) == [("ACK", str(engine.udp[1])), ("BYE", str(engine.udp[1]))], kamailio.log()[
            -3000:
        ]
        for other in engines:
            other.events.clear()


def test_an_invite_through_kamailio_without_credentials_is_challenged(engines, kamailio, trunk, tmp_path):  # noqa: F811
    """The REGISTER came from Kamailio's address, which every PBX behind it shares: that address
    must not stand for the trunk, even while it is the only trunk registered through it."""
    users = write_users(tmp_path / "users.csv", [("calls0001", PASSWORD)])
    registered = sipp_register(kamailio.port, users, count=1, rate=1)
    assert registered.returncode == 0, registered.stdout[-2000:] + kamailio.log()[-2000:]
    home = next(i for i, e in enumerate(engines) if e.engine.registrar.stats.registrations == 1)
    for index in (home, 1 - home):
        response = invite_without_credentials(kamailio, engine_set=index + 2)
        assert response is not None and response.status == 407, (index == home, response)
    assert not any(events_of(e, "CallStarted") for e in engines)
