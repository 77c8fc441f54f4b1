"""Cache reads from asyncio worker threads reuse one client: no Redis connection per call."""

from __future__ import annotations

import asyncio
import gc
import os

from smartalex.health import record_sipserver_heartbeat
from trunks.config_version import config_version


def test_engine_polls_from_worker_threads_open_no_new_connections():
    async def poll(times: int) -> None:
        for _ in range(times):
            await asyncio.to_thread(config_version)
            await asyncio.to_thread(record_sipserver_heartbeat, node="test")

    asyncio.run(poll(2))  # the one shared client connects
    gc.disable()  # what the engine's tuned gc amounts to between collections
    try:
        before = len(os.listdir("/proc/self/fd"))
        asyncio.run(poll(50))
        after = len(os.listdir("/proc/self/fd"))
    finally:
        gc.enable()
    assert after - before <= 2, (before, after)
