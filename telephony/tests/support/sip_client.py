"""Tiny blocking SIP senders for tests: one request, one response, over UDP, TCP or TLS."""

from __future__ import annotations

import socket
import ssl
import uuid


def options_request(host: str, port: int, transport: str = "UDP", local_port: int = 5099) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex[:12]
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{local_port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def udp_exchange(address: tuple[str, int], data: bytes, timeout: float = 2.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, address)
        return sock.recvfrom(65535)[0]


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65535)
        if not chunk:
            break
        data += chunk
    return data


def stream_exchange(
    address: tuple[str, int], data: bytes, *, tls: bool = False, timeout: float = 3.0
) -> bytes:
    raw = socket.create_connection(address, timeout=timeout)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = context.wrap_socket(raw, server_hostname="localhost")
    with raw:
        raw.sendall(data)
        return read_response(raw)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])
