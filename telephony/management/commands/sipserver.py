"""`python manage.py sipserver`: runs one SIP engine process (registrar, calls, media)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from telephony.abuse import AbuseSettings

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
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.SIP_WORKERS,
            help="engine processes sharing the port under one supervisor (default SIP_WORKERS)",
        )
        parser.add_argument(
            "--spread-from",
            default=",".join(AbuseSettings().trusted_sources),
            help="networks whose REGISTERs are spread over the workers by Call-ID (proxies, SBCs; "
            "default: the trusted sources); other traffic goes to a worker by source address",
        )

    def handle(self, *args, host: str, port: int, tls_port: int, workers: int, spread_from: str, **options):
        tls = tls_port if tls_port > 0 else None
        if workers <= 1:
            _run(self._serve(host, port, tls))
            return
        from telephony.workers import bind_listeners, supervise

        networks = [n.strip() for n in spread_from.split(",") if n.strip()]
        listeners = bind_listeners(host, port, tls, workers, spread_from=networks)
        port = listeners[0].udp.getsockname()[1]
        base_metrics_port = getattr(settings, "SIP_METRICS_PORT", 0)

        def serve(index: int, own) -> None:
            if base_metrics_port:  # one metrics port per worker: SIP_METRICS_PORT + index
                settings.SIP_METRICS_PORT = base_metrics_port + index
            _run(self._serve(host, port, tls, worker=(index, workers), listeners=own))

        supervise(listeners, serve)

    async def _serve(self, host: str, port: int, tls_port: int | None, worker=None, listeners=None) -> None:
        engine = build_engine(host=host, port=port, tls_port=tls_port)
        if listeners is not None:
            for kind in ("udp", "tcp", "tls"):
                if getattr(listeners, kind) is not None:
                    engine.transports.adopt(kind, getattr(listeners, kind))
        addresses = await engine.start()
        tune_gc()
        name = f"sipserver worker {worker[0]}/{worker[1]}" if worker else "sipserver"
        self.stdout.write(
            f"{name} {engine.node} ready: "
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
        # What this process handled: how evenly the workers share the load.
        self.stdout.write(
            f"{name} {engine.node} stopped: {engine.counters['requests']} requests, "
            f"{engine.registrar.stats.registers} REGISTERs",
            ending="\n",
        )
        self.stdout.flush()


def tune_gc() -> None:
    """Keeps the cyclic garbage collector's pauses off the SIP path.

    With CPython's default thresholds a full collection walks every object: the startup heap
    (Django, the configuration snapshot) and the 32 s of completed transactions that RFC 3261
    keeps for absorbing retransmissions. Measured at 800 REGISTER/s: pauses of 80-260 ms every
    few seconds, answers late enough for 300 retransmissions in 10 s; at 1,200/s, 3,335 failed
    registrations. Freezing the startup heap and collecting the young generation rarely (but
    still collecting it) removed them: 0 retransmissions at 1,200/s on the same machine.
    Requests are mostly freed by reference counting; cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)


def _run(coroutine) -> None:
    try:
        import uvloop
    except ImportError:
        uvloop = None
    (uvloop.run if uvloop is not None else asyncio.run)(coroutine)
