"""The engine's Prometheus endpoint: `GET /metrics` on 127.0.0.1:SIP_METRICS_PORT.

The numbers are the counters the engine already keeps (Engine.counters, the registrar's,
transports' and abuse guard's stats, the call handler's); they are read when scraped, so the
SIP path pays nothing. The server is a task on the engine's own loop: no thread, and it stops
with the engine. Bound to 127.0.0.1 only (a local agent scrapes it); a port in use is a
warning, never a reason for the engine not to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from telephony.engine import Engine

log = logging.getLogger("telephony.metrics")
METRICS_HOST = "127.0.0.1"


def _as_dict(stats: Any) -> dict[str, int]:
    if stats is None:
        return {}
    if dataclasses.is_dataclass(stats):
        return dataclasses.asdict(stats)
    return dict(stats)


class EngineCollector:
    """Reads the engine's counters at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _family(self, name: str, doc: str, label: str, values: dict[str, int]) -> Metric:
        family = CounterMetricFamily(name, doc, labels=[label])
        for key, value in sorted(values.items()):
            family.add_metric([key], float(value))
        return family

    def collect(self) -> Iterator[Metric]:
        engine = self.engine
        yield self._family("smartalex_sip_messages", "SIP messages handled", "kind", engine.counters)
        yield self._family(
            "smartalex_sip_register",
            "REGISTER outcomes (registrations, refreshes, auth failures...)",
            "outcome",
            _as_dict(engine.registrar.stats),
        )
        yield self._family(
            "smartalex_sip_transport",
            "Transport events (datagrams, parse errors, connections)",
            "event",
            _as_dict(engine.transports.stats),
        )
        yield self._family(
            "smartalex_sip_abuse",
            "Abuse guard: bans, drops, auth failures",
            "event",
            _as_dict(engine.guard.counters),
        )
        calls = _as_dict(getattr(engine.calls, "stats", None))
        if calls:
            yield self._family(
                "smartalex_sip_calls", "Call handling (invites, answered, rejections)", "event", calls
            )
        transfers = getattr(engine.calls, "transfers", None)
        if transfers is not None:
            yield self._family(
                "smartalex_sip_transfers", "Transfers by outcome", "outcome", _as_dict(transfers)
            )
        bans = GaugeMetricFamily("smartalex_sip_bans_active", "Source addresses banned right now")
        bans.add_metric([], float(len(engine.guard.bans)))
        yield bans
        traces = GaugeMetricFamily("smartalex_sip_trace_dialogs", "Dialogs held in the trace buffer")
        traces.add_metric([], float(len(engine.traces)))
        yield traces


def engine_registry(engine: Engine) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    return registry


async def serve_engine_metrics(engine: Engine, port: int | None = None) -> None:
    """Runs until cancelled (Engine.stop cancels its tasks). `engine.metrics_port` tells the bound port."""
    if port is None:
        from django.conf import settings

        port = getattr(settings, "SIP_METRICS_PORT", 0) or None
        if port is None:
            return
    registry = engine_registry(engine)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.split()
            if len(parts) >= 2 and parts[0] == b"GET" and parts[1].split(b"?")[0] == b"/metrics":
                body, status, ctype = generate_latest(registry), "200 OK", CONTENT_TYPE_LATEST
            else:
                body, status, ctype = b"not found\n", "404 Not Found", "text/plain"
            head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, METRICS_HOST, port)
    except OSError as exc:
        log.warning("engine metrics not served: %s:%s: %s", METRICS_HOST, port, exc)
        return
    engine.metrics_port = server.sockets[0].getsockname()[1]
    log.info("engine metrics on http://%s:%s/metrics", METRICS_HOST, engine.metrics_port)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
