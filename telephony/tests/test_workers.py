"""`sipserver --workers`: one port, several engine processes, REGISTERs from one socket spread.

The steering program is checked three ways: as instructions (`reuseport.simulate`), against the
kernel (real SO_REUSEPORT sockets on 127.0.0.1), and through real `manage.py sipserver --workers 2`
processes: one client socket's REGISTERs reach both workers, a retransmission reaches the worker
that holds its transaction, and a worker killed with -9 is replaced while the other answers.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from telephony import reuseport
from telephony.tests.support import processes

ROOT = Path(__file__).resolve().parents[2]


def register(call_id: str, cseq: int = 1, port: int = 5060, auth: str = "") -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    return (
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:user0001@127.0.0.1>;tag=f1\r\nTo: <sip:user0001@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
        "Contact: <sip:user0001@127.0.0.1:5080>\r\n"
        f"{auth}Expires: 3600\r\nUser-Agent: worker-test\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def options(call_id: str) -> bytes:
    return register(call_id).replace(b"REGISTER", b"OPTIONS")


# --- the program, instruction by instruction -----------------------------------------------------


def test_same_call_id_same_worker_different_call_ids_spread():
    program = reuseport.steering_program(3, ["127.0.0.0/8"])
    assert len(program) <= reuseport.BPF_MAXINSNS
    picks = Counter(reuseport.simulate(program, register(f"{i}-4242@127.0.0.1")) for i in range(600))
    assert set(picks) == {0, 1, 2} and min(picks.values()) > 120, picks
    # The credentials REGISTER and a refresh: other branch, CSeq and an Authorization header.
    first = register("a84b4c76e66710@pbx.example.com")
    again = register(
        "a84b4c76e66710@pbx.example.com", cseq=2, auth='Authorization: Digest username="user0001"\r\n'
    )
    assert reuseport.simulate(program, first) == reuseport.simulate(program, again) < 3


def test_call_id_header_name_in_any_case_and_late_in_the_message():
    program = reuseport.steering_program(4, ["127.0.0.0/8"])
    message = register("late-call-id-000000")
    moved = message.replace(
        b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nX-Padding: " + b"p" * 400 + b"\r\n"
    )
    lower = message.replace(b"Call-ID:", b"call-id:")
    index = reuseport.simulate(program, message)
    assert index < 4
    assert reuseport.simulate(program, moved) == index == reuseport.simulate(program, lower)


def test_everything_else_falls_back_to_the_kernels_flow_hash():
    program = reuseport.steering_program(2, ["127.0.0.0/8"])
    fallback = reuseport.FALLBACK
    assert reuseport.simulate(program, options("x" * 20)) == fallback  # not a REGISTER
    assert reuseport.simulate(program, b"SIP/2.0 200 OK\r\n" + b"x" * 200) == fallback  # a response
    assert reuseport.simulate(program, register("y" * 20), source_ip="203.0.113.9") == fallback
    assert reuseport.simulate(program, b"REGISTER sip:a SIP/2.0\r\n\r\n") == fallback  # too short
    no_call_id = register("z" * 20).replace(b"Call-ID:", b"X-Other:")
    assert reuseport.simulate(program, no_call_id) == fallback
    beyond = register("q" * 20).replace(b"Max-Forwards: 70\r\n", b"X-Pad: " + b"p" * 800 + b"\r\n")
    assert reuseport.simulate(program, beyond) == fallback
    everyone = reuseport.steering_program(2)
    assert reuseport.simulate(everyone, register("y" * 20), source_ip="203.0.113.9") < 2
    v6 = reuseport.steering_program(2, ["2001:db8::/32"])
    assert reuseport.simulate(v6, register("y" * 20), source_ip="2001:db8::5") < 2
    assert reuseport.simulate(v6, register("y" * 20), source_ip="2001:db9::5") == fallback


# --- the kernel ------------------------------------------------------------------------------------


def bind_group(count: int, program) -> tuple[list[socket.socket], int]:
    sockets, port = [], 0
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        port = sock.getsockname()[1]
        sockets.append(sock)
    reuseport.attach(sockets[0], program)
    return sockets, port


def received_by(sockets: list[socket.socket], timeout: float = 5.0) -> int:
    ready, _, _ = select.select(sockets, [], [], timeout)
    assert len(ready) == 1, ready
    ready[0].recv(65535)
    return sockets.index(ready[0])


def test_the_kernel_picks_the_socket_the_program_names():
    program = reuseport.steering_program(3, ["127.0.0.0/8"])
    sockets, port = bind_group(3, program)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        seen = Counter()
        for i in range(150):
            data = register(f"{i}-{uuid.uuid4().hex[:6]}@127.0.0.1")
            client.sendto(data, ("127.0.0.1", port))
            got = received_by(sockets)
            assert got == reuseport.simulate(program, data)
            seen[got] += 1
        assert len(seen) == 3, seen  # one source socket, three receivers
        # OPTIONS from that one socket: the kernel's flow hash, so always the same receiver.
        flow = set()
        for i in range(10):
            client.sendto(options(f"o{i}-{'x' * 16}"), ("127.0.0.1", port))
            flow.add(received_by(sockets))
        assert len(flow) == 1
    for sock in sockets:
        sock.close()


def test_kernel_falls_back_past_the_group_and_reads_zero_past_the_packet():
    """What the design relies on: an index >= the group's size means "use your hash" (so
    different sources reach different sockets), while a load past the packet's end ends the
    program with 0 (socket 0) rather than falling back."""
    past = [reuseport.Insn(reuseport.RET | reuseport.K, k=7)]
    out_of_packet = [
        reuseport.Insn(reuseport.LD | reuseport.W | reuseport.ABS, k=4000),
        reuseport.Insn(reuseport.RET | reuseport.K, k=1),
    ]
    for program, expect_spread in ((past, True), (out_of_packet, False)):
        sockets, port = bind_group(2, program)
        seen = set()
        for _ in range(24):  # 24 source ports: all on one socket by chance is 2**-23
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.sendto(b"x" * 100, ("127.0.0.1", port))
                seen.add(received_by(sockets))
        assert seen == ({0, 1} if expect_spread else {0})
        assert reuseport.simulate(program, b"x" * 100) == (7 if expect_spread else 0)
        for sock in sockets:
            sock.close()


# --- real sipserver processes ------------------------------------------------------------------------


class Supervisor:
    """`manage.py sipserver --workers N` on a free port; collects its output lines."""

    def __init__(self, workers: int) -> None:
        env = dict(
            processes.test_database_env(),
            REDIS_URL="redis://127.0.0.1:6379/13",
            SMARTALEX_VAR_DIR=f"/tmp/sa-workers-{os.getpid()}",
            LOG_LEVEL="INFO",
        )
        self.workers = workers
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "sipserver",
                "--port",
                "0",
                "--tls-port",
                "0",
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.wait_for(lambda: len(self.ready()) >= workers, 60)
        assert ready, "".join(self.lines[-40:])
        self.port = int(re.search(r"udp 127\.0\.0\.1:(\d+)", self.ready()[0]).group(1))

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, predicate, timeout: float):
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return value
                self._changed.wait(left)
            return value

    def ready(self) -> list[str]:
        return [line for line in self.lines if re.match(r"sipserver worker \d+/\d+ .* ready:", line)]

    def pid_of(self, index: int) -> int:
        lines = [line for line in self.ready() if line.startswith(f"sipserver worker {index}/")]
        return int(re.search(r":(\d+) ready:", lines[-1]).group(1))

    def stop(self) -> dict[int, int]:
        """Stops everything; returns the REGISTERs each worker reported handling."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.wait_for(lambda: False, 0.5)  # let the reader take the last lines
        counts: dict[int, int] = {}
        for line in self.lines:
            match = re.match(r"sipserver worker (\d+)/\d+ .* stopped: \d+ requests, (\d+) REGISTERs", line)
            if match:
                counts[int(match.group(1))] = counts.get(int(match.group(1)), 0) + int(match.group(2))
        return counts


@pytest.fixture
def supervisor(transactional_db):
    server = Supervisor(2)
    yield server
    if server.process.poll() is None:
        server.stop()


def exchange(client: socket.socket, data: bytes, port: int, timeout: float = 10.0) -> bytes:
    client.settimeout(timeout)
    client.sendto(data, ("127.0.0.1", port))
    return client.recvfrom(65535)[0]


def call_ids_for(worker: int, count: int, workers: int = 2) -> list[str]:
    program = reuseport.steering_program(workers, ["127.0.0.0/8"])
    found = []
    while len(found) < count:
        call_id = f"{uuid.uuid4().hex}@worker-test"
        if reuseport.simulate(program, register(call_id)) == worker:
            found.append(call_id)
    return found


@pytest.mark.slow
def test_one_sockets_registers_reach_both_workers_and_retransmissions_their_transaction(supervisor):
    program = reuseport.steering_program(2, ["127.0.0.0/8"])
    expected = Counter()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        for i in range(60):
            data = register(f"{i}-{uuid.uuid4().hex[:8]}@worker-test", port=supervisor.port)
            expected[reuseport.simulate(program, data)] += 1
            first = exchange(client, data, supervisor.port)
            again = exchange(client, data, supervisor.port)  # a retransmission: the same bytes
            assert first.startswith(b"SIP/2.0 401 "), first[:60]
            # A second transaction would answer with a fresh nonce and To tag.
            assert again == first
    counts = supervisor.stop()
    assert counts == dict(expected) and set(counts) == {0, 1}, (counts, expected)


@pytest.mark.slow
def test_a_killed_worker_is_restarted_while_the_other_answers(supervisor):
    victim, survivor = supervisor.pid_of(0), supervisor.pid_of(1)
    os.kill(victim, signal.SIGKILL)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        for call_id in call_ids_for(1, 5):
            assert exchange(client, register(call_id, port=supervisor.port), supervisor.port).startswith(
                b"SIP/2.0 401 "
            )
        restarted = supervisor.wait_for(
            lambda: len([line for line in supervisor.ready() if line.startswith("sipserver worker 0/")]) >= 2,
            60,
        )
        assert restarted, "".join(supervisor.lines[-30:])
        assert supervisor.pid_of(0) != victim and supervisor.pid_of(1) == survivor
        assert any("worker 0" in line and "SIGKILL" in line for line in supervisor.lines)
        for call_id in call_ids_for(0, 5):
            assert exchange(client, register(call_id, port=supervisor.port), supervisor.port).startswith(
                b"SIP/2.0 401 "
            )
    counts = supervisor.stop()
    assert counts.get(1) == 5 and counts.get(0) == 5, counts
