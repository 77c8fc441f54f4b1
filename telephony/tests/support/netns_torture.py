"""Throws every RFC 4475 torture message at a running engine over UDP and TCP, then checks it
still answers OPTIONS. Meant to run inside a network namespace that has only loopback
(see test_torture_sockets.py), because the messages name foreign hosts in Via and Contact.

Prints one JSON object: {"udp": {file: status or null}, "tcp": {...}, "alive": bool}.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
from pathlib import Path

from telephony.tests.support.engine_runner import EngineThread
from telephony.tests.support.sip_client import options_request, status_of, udp_exchange


def first_status(data: bytes) -> int | None:
    try:
        return status_of(data) if data.startswith(b"SIP/2.0 ") else None
    except (ValueError, IndexError):
        return None


def over_udp(address, payload: bytes) -> int | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.sendto(payload, address)
        try:
            return first_status(sock.recvfrom(65535)[0])
        except TimeoutError:
            return None


def over_tcp(address, payload: bytes) -> int | None:
    with socket.create_connection(address, timeout=2) as sock:
        sock.settimeout(0.3)
        sock.sendall(payload)
        try:
            return first_status(sock.recv(65535))
        except (TimeoutError, ConnectionResetError):
            return None


def main(data_dir: Path) -> None:
    """One engine per message and transport: RFC 4475 reuses branches across messages, and a
    second message with the same branch would rightly be answered as a retransmission."""
    results: dict = {"udp": {}, "tcp": {}, "parse_errors": 0, "alive": True}
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(data_dir.glob("*.dat")):
            payload = path.read_bytes()
            for transport, send in (("udp", over_udp), ("tcp", over_tcp)):
                engine = EngineThread(Path(tmp), tls=False).start()
                try:
                    address = engine.udp if transport == "udp" else engine.tcp
                    results[transport][path.stem] = send(address, payload)
                    alive = status_of(udp_exchange(engine.udp, options_request(*engine.udp))) == 200
                    results["alive"] = results["alive"] and alive
                    results["parse_errors"] += engine.engine.counters["parse_errors"]
                finally:
                    engine.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
