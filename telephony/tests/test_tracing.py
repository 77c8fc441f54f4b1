"""SIP traces: a failed REGISTER exchange is reported with every message; refreshes are not."""

import socket
import time
import uuid

import pytest

from telephony.sip import digest
from telephony.tests.support.engine_runner import REALM, EngineThread
from telephony.tracing import TraceBuffer
from telephony.transport import Peer


def register(sock, address, call_id, cseq, authorization=None):
    lines = [
        f"REGISTER sip:{REALM} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{sock.getsockname()[1]};branch=z9hG4bK{uuid.uuid4().hex[:10]};rport",
        "Max-Forwards: 70",
        f"From: <sip:ghost@{REALM}>;tag=t1",
        f"To: <sip:ghost@{REALM}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:ghost@127.0.0.1:{sock.getsockname()[1]}>",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    sock.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), address)
    return sock.recvfrom(65535)[0].decode()


def test_failed_register_is_reported_as_a_trace(tmp_path):
    engine = EngineThread(tmp_path, tls=False).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(3)
            challenge = register(sock, engine.udp, "trace-1", 1)
            values = [
                line.split(": ", 1)[1] for line in challenge.split("\r\n") if line.startswith("WWW-Auth")
            ]
            auth = digest.answer_challenge(
                values,
                method="REGISTER",
                uri=f"sip:{REALM}",
                username="ghost",
                password="whatever-it-is",
                cnonce="c1",
            )
            assert register(sock, engine.udp, "trace-1", 2, auth).startswith("SIP/2.0 403")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not any(
            e.get("type") == "SipTraceRecorded" for e in engine.events
        ):
            time.sleep(0.05)
        trace = next(e for e in engine.events if e["type"] == "SipTraceRecorded")
        assert trace["kind"] == "register" and trace["username"] == "ghost" and trace["trunk_id"] is None
        assert [m["direction"] for m in trace["messages"]] == ["in", "out", "in", "out"]
        assert trace["messages"][3]["text"].startswith("SIP/2.0 403") and trace["outcome"] == "403 Forbidden"
    finally:
        engine.stop()


@pytest.mark.parametrize("count", [1, 100])
def test_buffer_keeps_recent_messages_per_call_id(count):
    buffer = TraceBuffer(max_messages=10)
    peer = Peer("udp", "127.0.0.1", 5060)
    for i in range(count):
        buffer.observe(
            "in",
            f"OPTIONS sip:x SIP/2.0\r\nCall-ID: abc\r\nCSeq: {i} OPTIONS\r\n\r\n".encode(),
            peer,
            now=1000.0 + i,
        )
    assert len(buffer.take("abc")) == min(count, 10) and buffer.take("abc") == []
    buffer.observe("in", b"OPTIONS sip:x SIP/2.0\r\ni: old\r\n\r\n", peer, now=0.0)
    buffer.prune(now=1000.0)
    assert len(buffer) == 0


def test_a_tcp_trace_holds_the_bytes_the_peer_sent(tmp_path):
    """Compact names, odd spacing and a folded header: support must see them as sent."""
    engine = EngineThread(tmp_path, tls=False).start()
    try:
        with socket.create_connection(engine.tcp, timeout=3) as sock:
            port = sock.getsockname()[1]
            sent = (
                f"REGISTER sip:{REALM} SIP/2.0\r\n"
                f"v:  SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex[:10]}\r\n"
                "Max-Forwards: 70\r\n"
                f"f: <sip:ghost@{REALM}>;tag=t1\r\n"
                f"t:<sip:ghost@{REALM}>\r\n"
                "i: trace-tcp-1\r\n"
                "CSeq: 1 REGISTER\r\n"
                "User-Agent: Folded\r\n   PBX/1.0\r\n"
                f"m: <sip:ghost@127.0.0.1:{port};transport=tcp>\r\n"
                "l: 0\r\n\r\n"
            ).encode()
            sock.sendall(sent)
            assert sock.recv(65535).startswith(b"SIP/2.0 401")  # the tap ran before the answer
        messages = engine.engine.traces.take("trace-tcp-1")
    finally:
        engine.stop()
    incoming = [m.data for m in messages if m.direction == "in"]
    assert incoming == [sent]
