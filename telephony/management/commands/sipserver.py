"""`python manage.py sipserver`: runs one SIP engine process (registrar, calls, media)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

log = logging.getLogger("telephony.sipserver")


def build_engine(*, host: str, port: int, tls_port: int | None):
    from smartalex.health import record_sipserver_heartbeat
    from telephony.config import ConfigWatcher
    from telephony.engine import Engine, EngineSettings
    from telephony.event_sink import EventSink
    from telephony.location import location_store_from_settings

    engine_settings = EngineSettings(
        realm=settings.SIP_DOMAIN,
        host=host,
        port=port,
        tls_port=tls_port,
        tls_cert=settings.SIP_TLS_CERT,
        tls_key=settings.SIP_TLS_KEY,
        var_dir=Path(settings.VAR_DIR),
        # Every engine derives the same nonce secret, so a nonce issued by one verifies at another.
        nonce_secret=hmac.new(settings.SECRET_KEY.encode(), b"sip-nonce", hashlib.sha256).digest(),
    )
    engine = Engine(
        engine_settings,
        store=location_store_from_settings(),
        watcher=ConfigWatcher(),
        sink=EventSink(),
        heartbeat=None,
    )
    engine.heartbeat = lambda: record_sipserver_heartbeat(node=engine.node)
    return engine


class Command(BaseCommand):
    help = "Run the SIP engine on SIP_HOST:SIP_PORT (UDP and TCP) and SIP_TLS_PORT (TLS)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.SIP_HOST)
        parser.add_argument("--port", type=int, default=settings.SIP_PORT)
        parser.add_argument(
            "--tls-port", type=int, default=settings.SIP_TLS_PORT, help="0 or less disables TLS"
        )

    def handle(self, *args, host: str, port: int, tls_port: int, **options) -> None:
        try:
            import uvloop
        except ImportError:
            uvloop = None
        runner = uvloop.run if uvloop is not None else asyncio.run
        runner(self._serve(host, port, tls_port if tls_port > 0 else None))

    async def _serve(self, host: str, port: int, tls_port: int | None) -> None:
        engine = build_engine(host=host, port=port, tls_port=tls_port)
        addresses = await engine.start()
        self.stdout.write(
            f"sipserver {engine.node} ready: "
            + ", ".join(f"{kind} {ip}:{p}" for kind, (ip, p) in addresses.items()),
            ending="\n",
        )
        self.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await engine.stop()
