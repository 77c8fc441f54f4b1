"""A live engine keeps serving while garbage arrives on UDP, TCP and TLS: oversized datagrams,
NUL bytes, random bytes, endless headers, slow-loris connections and TLS handshakes that never
finish. Everything stays on 127.0.0.0/8 and the garbage names no host at all. The attacker uses
127.0.0.2, so the per-address connection limit it runs into does not also shut out the probe on
127.0.0.1 (as it would not shut out a PBX on another address)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import ssl
import threading
import time

import pytest

from telephony.tests.support.engine_runner import EngineThread
from telephony.tests.support.sip_client import options_request, read_response, status_of
from telephony.transport import TransportSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ATTACKER = "127.0.0.2"
BURST_SECONDS = 6.0


@pytest.fixture
def engine(tmp_path):
    thread = EngineThread(tmp_path).start()
    thread.engine.transports.settings = TransportSettings(header_timeout=1.0)
    yield thread
    thread.stop()


GARBAGE_PER_SECOND = 3_000


def udp_garbage(address, stop, sent) -> None:
    """Runs in a process of its own: a sender thread in the test process would compete with the
    engine's thread for the GIL and measure Python's scheduler, not the engine."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ATTACKER, 0))
        payloads = [
            b"\x00" * 1400,
            b"X" * 60_000,  # oversized: dropped before parsing
            b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + b"X-Long: " + b"a" * 15_000 + b"\r\n",
            b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(1500)),
            b"INVITE sip:127.0.0.1 SIP/2.0\r\nVia: \x00\x00\r\nCall-ID: \xff\xfe\r\n\r\n",
            b"SIP/2.0 200 OK\r\n\r\n",
        ]
        n = 0
        started = time.monotonic()
        while not stop.is_set():
            data = payloads[n % len(payloads)] if n % 3 else os.urandom(1 + n % 1300)
            sock.sendto(data, address)
            n += 1
            if n % 100 == 0:  # a steady flood at GARBAGE_PER_SECOND
                ahead = started + n / GARBAGE_PER_SECOND - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        sent.value = n


def endless_headers(address, stop: threading.Event, closed: list) -> None:
    """One TCP request whose header never ends: the framer's limits must cut it."""
    while not stop.is_set():
        sock = socket.create_connection(address, timeout=5, source_address=(ATTACKER, 0))
        try:
            sock.sendall(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n")
            while not stop.is_set():
                sock.sendall(b"X-Endless: " + b"z" * 500 + b"\r\n")
        except OSError:
            closed.append(1)  # the engine hung up on us: what it should do
        finally:
            sock.close()


def slow_loris(address, count: int, stop: threading.Event, holders: list) -> None:
    sockets = []
    for _ in range(count):
        try:
            sockets.append(socket.create_connection(address, timeout=5, source_address=(ATTACKER, 0)))
        except OSError:
            holders.append("refused")
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.sendall(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP ")
    while not stop.is_set():
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.sendall(b"1")  # a byte now and then: never idle, never done
        time.sleep(0.3)
    for sock in sockets:
        sock.close()


def probe_udp(address) -> int | None:
    """Retransmits like RFC 3261's timer A (0.5, 1, 2, 4 s): under a flood the kernel may drop a
    datagram before the engine sees it, and a real client sends it again."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for wait in (0.5, 1.0, 2.0, 4.0):
            sock.settimeout(wait)
            sock.sendto(options_request(*address), address)
            try:
                return status_of(sock.recvfrom(65535)[0])
            except TimeoutError:
                continue
    return None


def probe_stream(address, tls: bool = False) -> int | None:
    try:
        raw = socket.create_connection(address, timeout=5)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            raw = context.wrap_socket(raw, server_hostname="localhost")
        with raw:
            raw.sendall(options_request(*address, "TLS" if tls else "TCP"))
            return status_of(read_response(raw))
    except (OSError, IndexError, ValueError):
        return None


def test_engine_keeps_serving_through_a_garbage_burst(engine):
    stop = threading.Event()
    closed, holders = [], []
    processes = multiprocessing.get_context("spawn")
    stop_garbage, sent = processes.Event(), processes.Value("q", 0)
    flood = processes.Process(target=udp_garbage, args=(engine.udp, stop_garbage, sent))
    # TLS connections that send half a ClientHello and then nothing.
    stalled_tls = []
    for _ in range(20):
        sock = socket.create_connection(engine.tls, timeout=5, source_address=(ATTACKER, 0))
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
        stalled_tls.append(sock)
    flood.start()
    workers = [
        threading.Thread(target=endless_headers, args=(engine.tcp, stop, closed)),
        threading.Thread(target=slow_loris, args=(engine.tcp, 40, stop, holders)),
    ]
    for worker in workers:
        worker.start()
    probes = {"udp": [], "tcp": [], "tls": []}
    try:
        deadline = time.monotonic() + BURST_SECONDS
        while time.monotonic() < deadline:
            probes["udp"].append(probe_udp(engine.udp))
            probes["tcp"].append(probe_stream(engine.tcp))
            probes["tls"].append(probe_stream(engine.tls, tls=True))
            time.sleep(0.2)
    finally:
        stop.set()
        stop_garbage.set()
        flood.join(30)
        for worker in workers:
            worker.join(30)
    stats = engine.engine.transports.stats
    print(
        f"garbage datagrams sent: {sent.value}, probes: { {k: len(v) for k, v in probes.items()} }, {stats}"
    )
    for transport, answers in probes.items():
        assert answers and all(a == 200 for a in answers), f"{transport}: {answers}"
    assert sent.value > BURST_SECONDS * GARBAGE_PER_SECOND / 4  # the flood really ran
    assert stats.oversized_dropped > 0
    assert stats.connections_closed_slow > 0  # slow-loris cut after header_timeout
    assert closed, "the endless header was never cut"
    # The stalled handshakes are dropped by the TLS handshake timeout (10 s by default).
    for sock in stalled_tls:
        sock.settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""
        sock.close()
    # And afterwards: everything still answers.
    assert probe_udp(engine.udp) == 200
    assert probe_stream(engine.tcp) == 200
    assert probe_stream(engine.tls, tls=True) == 200
