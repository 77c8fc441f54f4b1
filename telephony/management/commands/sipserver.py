"""`python manage.py sipserver`: runs the SIP engine (registrar, calls, media) in one process."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from django.conf import settings
from django.core.management.base import BaseCommand

from smartalex.health import record_sipserver_heartbeat

log = logging.getLogger("telephony.sipserver")


class Command(BaseCommand):
    help = "Run the SIP engine on SIP_HOST:SIP_PORT (UDP and TCP) and SIP_TLS_PORT (TLS)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.SIP_HOST)
        parser.add_argument("--port", type=int, default=settings.SIP_PORT)
        parser.add_argument("--tls-port", type=int, default=settings.SIP_TLS_PORT)

    def handle(self, *args, host: str, port: int, tls_port: int, **options) -> None:
        asyncio.run(self._serve(host, port, tls_port))

    async def _serve(self, host: str, port: int, tls_port: int) -> None:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(host, port), reuse_port=True
        )
        tcp = await asyncio.start_server(lambda r, w: w.close(), host, port, reuse_port=True)
        log.info("sipserver listening on %s udp/tcp %d (tls %d)", host, port, tls_port)
        node = f"{socket.gethostname()}:{os.getpid()}"
        try:
            while True:
                await asyncio.to_thread(record_sipserver_heartbeat, node=node)
                await asyncio.sleep(settings.SIPSERVER_HEARTBEAT_SECONDS)
        finally:
            udp.close()
            tcp.close()
