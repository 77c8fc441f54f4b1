"""Runs an Engine on its own event loop in a background thread, for socket-level tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from telephony.config import ConfigWatcher, EngineConfig
from telephony.engine import Engine, EngineSettings
from telephony.event_sink import EventSink
from telephony.location import SqliteLocationStore

REALM = "sip.voice.getsmartalex.com"


class EngineThread:
    def __init__(
        self,
        var_dir: Path,
        *,
        load: Callable[[], EngineConfig] | None = None,
        read_version: Callable[[], int] | None = None,
        send_events=None,
        tls: bool = True,
        settings: dict | None = None,
        celery: bool = False,
    ) -> None:
        self.var_dir = var_dir
        self.events: list[dict] = []
        self._load = load or (lambda: EngineConfig())
        self._read_version = read_version or (lambda: 0)
        # With celery=True events go the real way: a Celery task per batch, for a worker process.
        self._celery = celery
        self._send_events = send_events or self.events.extend
        self._tls = tls
        self._settings = settings or {}
        self.loop = asyncio.new_event_loop()
        self.engine: Engine | None = None
        self.addresses: dict[str, tuple[str, int]] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> EngineThread:
        self._thread.start()
        self.addresses = self.call(self._start())
        return self

    async def _start(self):
        settings = EngineSettings(
            realm=REALM,
            host="127.0.0.1",
            port=0,
            tls_port=0 if self._tls else None,
            var_dir=self.var_dir,
            nonce_secret=b"n" * 32,
            heartbeat_interval=3600,
            **self._settings,
        )
        self.engine = Engine(
            settings,
            store=SqliteLocationStore(self.var_dir / "loc.sqlite3"),
            watcher=ConfigWatcher(load=self._load, read_version=self._read_version, poll_interval=0.1),
            sink=EventSink(interval=0.05)
            if self._celery
            else EventSink(send=self._send_events, interval=0.05),
        )
        return await self.engine.start()

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.engine is not None:
            self.call(self.engine.stop())
        # A configuration load still running in a worker thread would hold table locks while the
        # test's database flush truncates them (PostgreSQL reports a deadlock): wait for it.
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    @property
    def udp(self) -> tuple[str, int]:
        return self.addresses["udp"]

    @property
    def tcp(self) -> tuple[str, int]:
        return self.addresses["tcp"]

    @property
    def tls(self) -> tuple[str, int]:
        return self.addresses["tls"]
