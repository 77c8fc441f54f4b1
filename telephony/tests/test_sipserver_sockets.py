"""The engine on real sockets (127.0.0.1): OPTIONS over UDP/TCP/TLS, keep-alives, bad input, sipp."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from telephony.tests.support.engine_runner import EngineThread
from telephony.tests.support.sip_client import (
    options_request,
    read_response,
    status_of,
    stream_exchange,
    udp_exchange,
)

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path):
    engine = EngineThread(tmp_path).start()
    yield engine
    engine.stop()


def test_options_answered_over_udp_tcp_and_tls(server):
    host, port = server.udp
    assert status_of(udp_exchange(server.udp, options_request(host, port))) == 200
    assert status_of(stream_exchange(server.tcp, options_request(host, port, "TCP"))) == 200
    response = stream_exchange(server.tls, options_request(host, server.tls[1], "TLS"), tls=True)
    assert status_of(response) == 200 and b"Allow: INVITE" in response


def test_udp_response_carries_received_and_rport(server):
    response = udp_exchange(server.udp, options_request(*server.udp)).decode()
    via = next(line for line in response.split("\r\n") if line.startswith("Via:"))
    assert "received=127.0.0.1" in via and ";rport=" in via


def test_tcp_keepalive_ping_gets_a_pong_and_the_connection_stays(server):
    with socket.create_connection(server.tcp, timeout=3) as sock:
        sock.sendall(b"\r\n\r\n")
        assert sock.recv(10) == b"\r\n"
        sock.sendall(options_request(*server.tcp, "TCP"))
        assert status_of(read_response(sock)) == 200


def test_request_split_into_single_bytes_over_tcp(server):
    with socket.create_connection(server.tcp, timeout=3) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in options_request(*server.tcp, "TCP"):
            sock.send(bytes([byte]))
        assert status_of(read_response(sock)) == 200


def test_malformed_request_gets_400_and_the_server_keeps_serving(server):
    bad = (
        b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKbad\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: bad1\r\nCSeq: nine OPTIONS\r\n\r\n"
    )
    assert status_of(udp_exchange(server.udp, bad)) == 400
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x00" * 1000 + b"garbage", server.udp)  # dropped: nothing identifies a request
        sock.sendto(b"X" * 20000, server.udp)  # oversized: dropped
    assert status_of(udp_exchange(server.udp, options_request(*server.udp))) == 200
    assert server.engine.transports.stats.oversized_dropped == 1


def test_unknown_method_gets_501_with_allow(server):
    request = options_request(*server.udp).replace(b"OPTIONS", b"FROBNICATE")
    response = udp_exchange(server.udp, request)
    assert status_of(response) == 501 and b"Allow:" in response


def test_slow_header_connection_is_closed(tmp_path):
    from telephony.transport import TransportSettings

    engine = EngineThread(tmp_path).start()
    try:
        engine.engine.transports.settings = TransportSettings(header_timeout=0.5)
        with socket.create_connection(engine.tcp, timeout=5) as sock:
            sock.sendall(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1")
            time.sleep(2.0)
            assert sock.recv(10) == b""  # closed by the server
        assert engine.engine.transports.stats.connections_closed_slow == 1
    finally:
        engine.stop()


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_options(server, transport):
    host, port = server.udp
    result = subprocess.run(
        [
            "sipp",
            f"{host}:{port}",
            "-sf",
            str(DATA / "sipp" / "options.xml"),
            "-m",
            "20",
            "-r",
            "100",
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
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert server.engine.counters["options"] >= 20


@pytest.mark.slow
def test_manage_py_sipserver_answers_sipp(transactional_db):
    from django.conf import settings

    database = settings.DATABASES["default"]
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="smartalex.settings.test",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        SIP_HOST="127.0.0.1",
        SIP_PORT="25060",
        SIP_TLS_PORT="25061",
        SMARTALEX_VAR_DIR="/tmp/sa-sipserver",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sipserver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = []
        for line in process.stdout:  # log lines come first; the command prints "ready" when it listens
            seen.append(line)
            if "ready" in line or len(seen) > 50:
                break
        assert "ready" in seen[-1], "".join(seen)
        result = subprocess.run(
            [
                "sipp",
                "127.0.0.1:25060",
                "-sf",
                str(DATA / "sipp" / "options.xml"),
                "-m",
                "5",
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
        assert result.returncode == 0, result.stdout[-2000:]
        tls = stream_exchange(("127.0.0.1", 25061), options_request("127.0.0.1", 25061, "TLS"), tls=True)
        assert status_of(tls) == 200
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_sipcheck_command_reports_a_live_engine_and_a_dead_port(server):
    from django.core.management import CommandError, call_command

    call_command("sipcheck", host="127.0.0.1", port=server.udp[1], timeout=3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]
    with pytest.raises(CommandError):
        call_command("sipcheck", host="127.0.0.1", port=dead_port, timeout=0.5)
