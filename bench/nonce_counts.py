"""What the shared replay check costs an authenticated REGISTER, per check.

The registrar awaits one nonce-count check per authenticated request (telephony/shared_state.py).
This measures it on its own, on the engine's kind of loop (uvloop when installed), for:

    memory   the per-process table (what a single engine did before)
    sqlite   the embedded store's file (engines of one machine), one transaction per batch
    redis    the production store: one Lua call per batch, atomic across engines

`--batch N` puts N checks in flight at once, as N REGISTERs read in one loop turn would be
(1: a lone REGISTER pays a full round trip). Wall time per check is what the loop waits; CPU
time per check is what it spends, so the rate one core could sustain is 1 / CPU time.
Redis keys go to db 14 under a unique prefix and are deleted afterwards.

    .venv/bin/python bench/nonce_counts.py
    .venv/bin/python bench/nonce_counts.py --checks 50000 --batch 1 10 100 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telephony.redis_pipe import RedisPipe  # noqa: E402
from telephony.shared_state import MemoryNonceCounts, RedisNonceCounts, SqliteNonceCounts  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


async def measure(counts, checks: int, batch: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per check; every check is a fresh nonce, like a REGISTER after a 401."""
    now = time.time()
    run = uuid.uuid4().hex[:8]
    refused = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, checks, batch):
        if batch == 1:  # a lone REGISTER awaits its check directly, as the registrar does
            refused += not await counts.accept(f"{run}{start}", 1, now=now)
            continue
        verdicts = await asyncio.gather(
            *(counts.accept(f"{run}{i}", 1, now=now) for i in range(start, min(start + batch, checks)))
        )
        refused += verdicts.count(False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert refused == 0, f"{refused} fresh nonces refused"
    return wall / checks * 1e6, cpu / checks * 1e6


async def main(args: argparse.Namespace) -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(REDIS_URL)
    prefix = f"bench:nc:{uuid.uuid4().hex}:"
    folder = tempfile.mkdtemp(prefix="bench-nc-")
    db = sqlite3.connect(
        Path(folder) / "loc.sqlite3", isolation_level=None, check_same_thread=False, timeout=5
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    stores = {
        "memory": MemoryNonceCounts(),
        "sqlite": SqliteNonceCounts(db),
        "redis": RedisNonceCounts(RedisPipe(REDIS_URL), prefix=prefix),
    }
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")
    print(f"{'store':8} {'batch':>6} {'wall µs/check':>14} {'CPU µs/check':>13} {'checks/s/core':>14}")
    try:
        for name in args.stores:
            for batch in args.batch:
                await measure(stores[name], min(args.checks, 2000), batch)  # warm up (script load, pages)
                wall, cpu = await measure(stores[name], args.checks, batch)
                print(f"{name:8} {batch:>6} {wall:>14.1f} {cpu:>13.1f} {1e6 / cpu:>14,.0f}")
        if "redis" in args.stores:
            # The floor: one plain GET, what any single Redis round trip costs this client.
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(min(args.checks, 5000)):
                await client.get(prefix + "floor")
            n = min(args.checks, 5000)
            wall, cpu = (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6
            print(
                f"{'redis GET':9}{1:>6} {wall:>14.1f} {cpu:>13.1f} {1e6 / cpu:>14,.0f}   (floor: one round trip)"
            )
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=10_000)]
        if keys:
            sample = [await client.memory_usage(k) for k in keys[:1000]]
            print(f"redis: {len(keys)} count keys, {sum(sample) / len(sample):.0f} bytes each (MEMORY USAGE)")
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=10_000)]
        for start in range(0, len(keys), 10_000):
            await client.delete(*keys[start : start + 10_000])
        await client.aclose()
        db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--stores", nargs="+", default=["memory", "sqlite", "redis"])
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args))
    else:
        uvloop.run(main(args))
