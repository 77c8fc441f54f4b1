"""Carries engine events to the worker in batches, off the event loop.

The hot path only appends to a list. A flush every `interval` seconds (or at `max_batch`)
sends one Celery task per batch from a worker thread, so a slow broker never stalls SIP.
Refreshes of the same trunk within a batch are coalesced: only the newest is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from telephony import events as ev

log = logging.getLogger(__name__)


def _send_with_celery(batch: list[dict]) -> None:
    from telephony.tasks import record_engine_events

    record_engine_events.delay(batch)


class EventSink:
    def __init__(
        self,
        *,
        send: Callable[[list[dict]], None] = _send_with_celery,
        interval: float = 0.2,
        max_batch: int = 500,
        max_pending: int = 100_000,
    ) -> None:
        self._send = send
        self.interval = interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending: list[ev.EngineEvent] = []
        self._wakeup = asyncio.Event()
        self.sent = 0
        self.dropped = 0

    def emit(self, event: ev.EngineEvent) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1  # the broker is down for long: keep memory bounded, count the loss
            return
        self._pending.append(event)
        if len(self._pending) >= self.max_batch:
            self._wakeup.set()

    @staticmethod
    def coalesce(events: list[ev.EngineEvent]) -> list[ev.EngineEvent]:
        newest_refresh: dict[int, int] = {}
        for index, event in enumerate(events):
            if isinstance(event, ev.TrunkRefreshed):
                newest_refresh[event.trunk_id] = index
        return [
            e
            for i, e in enumerate(events)
            if not isinstance(e, ev.TrunkRefreshed) or newest_refresh[e.trunk_id] == i
        ]

    async def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            payload = [ev.encode(e) for e in self.coalesce(batch)]
            try:
                await asyncio.to_thread(self._send, payload)
                self.sent += len(payload)
            except Exception:  # noqa: BLE001 — the broker is away: put them back and retry later
                log.warning("could not send %d engine events; will retry", len(payload), exc_info=True)
                self._pending[:0] = batch
                return

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.interval)
            self._wakeup.clear()
            await self.flush()
