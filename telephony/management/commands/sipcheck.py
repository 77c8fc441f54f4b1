"""`python manage.py sipcheck`: is the local SIP engine answering? (the container health check)."""

from __future__ import annotations

import socket
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def options_ping(host: str, port: int, timeout: float) -> str:
    """Sends one OPTIONS over UDP and returns the status line of the answer."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        local_host, local_port = sock.getsockname()[:2]
        sock.send(
            (
                f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {local_host}:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:healthcheck@{local_host}>;tag={uuid.uuid4().hex[:8]}\r\n"
                f"To: <sip:{host}>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode()
        )
        return sock.recv(65535).split(b"\r\n", 1)[0].decode("latin-1")


class Command(BaseCommand):
    help = "Send OPTIONS to the local SIP engine; exit 0 when it answers 200."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.SIP_PORT)
        parser.add_argument("--timeout", type=float, default=3.0)

    def handle(self, *args, host: str, port: int, timeout: float, **options) -> None:
        try:
            status = options_ping(host, port, timeout)
        except OSError as exc:
            raise CommandError(f"no answer from {host}:{port}: {exc}") from exc
        if not status.startswith("SIP/2.0 200"):
            raise CommandError(f"{host}:{port} answered {status!r}")
        self.stdout.write(f"{host}:{port} {status}")
