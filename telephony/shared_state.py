"""Security state that every `sipserver` of a deployment shares: digest nonce counts and bans.

Without it an attacker gets one replay per engine out of a captured REGISTER, and 20 guesses per
engine before a ban. It lives where the bindings live (`security_for`): with the Redis location
store, in the same Redis (keys `sec:nc:*`, stream `sec:bans`); with the embedded SQLite store, in
tables of the same file, since the engines of one machine (`sipserver --workers`) share that file
and a replay could otherwise land on a sibling. Any other store (tests): the engine's memory.

- Nonce counts: `RedisNonceCounts.accept` is awaited, and the checks of one event-loop turn go
  to Redis together as one Lua call, so a burst of REGISTERs costs one round trip, not one each.
  The script checks and raises the count atomically: a replay is refused exactly once, whichever
  engine sees it first. Keys live as long as a nonce can (its lifetime plus the clock skew).
- Bans: an engine appends the bans it decides to a Redis stream and reads everyone's from it
  every `ban_sync_interval` (and at once after a ban of its own), so a source banned by one
  engine is ignored by all within about a second. A stream, rather than pub/sub, because an
  engine that starts (or reconnects) reads the bans still running, and no message is lost.
  The stream keeps the last `max_entries` bans (trimmed by count, not by time, so the engines'
  and Redis's clocks need not agree); expired ones are skipped on reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from telephony.location import NonceGuard
from telephony.redis_pipe import RedisPipe, Script
from telephony.sip import digest

if TYPE_CHECKING:
    import redis.asyncio as redis_asyncio

    from telephony.abuse import AbuseGuard
    from telephony.location import LocationStore

log = logging.getLogger(__name__)

# --- nonce counts ------------------------------------------------------------------------------


class MemoryNonceCounts:
    """The core's per-process store behind the awaited interface (the embedded default)."""

    def __init__(self, store: digest.MemoryNonceCountStore | None = None) -> None:
        self.store = store if store is not None else digest.MemoryNonceCountStore()

    async def accept(self, nonce: str, nc: int, *, now: float) -> bool:
        return self.store.accept(nonce, nc, now=now)

    async def close(self) -> None:
        pass


# KEYS: one per nonce; ARGV[1]: TTL in ms, then one count per key. A key seen twice in one call
# is checked in order, so a replay inside one batch is refused like any other.
_ACCEPT_SCRIPT = """
local ttl = ARGV[1]
local out = {}
for i, key in ipairs(KEYS) do
  local nc = tonumber(ARGV[i + 1])
  local last = redis.call('GET', key)
  if last and tonumber(last) >= nc then
    out[i] = 0
  else
    if last then
      redis.call('SET', key, ARGV[i + 1], 'KEEPTTL')
    else
      redis.call('SET', key, ARGV[i + 1], 'PX', ttl)
    end
    out[i] = 1
  end
end
return out
"""
_ACCEPT = Script(_ACCEPT_SCRIPT)


class _BatchedCounts:
    """Checks of one event-loop turn go to the store together (`_check`), each caller awaiting
    its own verdict: a burst of REGISTERs costs one round trip, or one transaction."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, int, float, asyncio.Future[bool]]] = []
        self._flushing = False
        self.batches = 0
        self.checks = 0

    async def accept(self, nonce: str, nc: int, *, now: float) -> bool:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._pending.append((nonce, nc, now, waiter))
        if not self._flushing:
            self._flushing = True
            loop.create_task(self._flush())
        return await waiter

    async def _check(self, batch: list[tuple[str, int, float]]) -> list[bool]:
        raise NotImplementedError

    async def _flush(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # requests read in this loop turn join the batch
                batch, self._pending = self._pending, []
                try:
                    verdicts = await self._check([(nonce, nc, now) for nonce, nc, now, _ in batch])
                except Exception as error:  # noqa: BLE001 — each caller learns its check failed
                    for *_, waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(error)
                    continue
                self.batches += 1
                self.checks += len(batch)
                for (*_, waiter), verdict in zip(batch, verdicts, strict=True):
                    if not waiter.done():
                        waiter.set_result(bool(verdict))
        finally:
            self._flushing = False

    async def close(self) -> None:
        pass  # the connection belongs to the location store


class RedisNonceCounts(_BatchedCounts):
    """Nonce counts in Redis: one Lua call per batch, atomic across engines.

    `ttl` must cover the nonce lifetime plus the clock skew the nonce factory allows: a count
    forgotten while its nonce is still valid could be replayed.
    """

    def __init__(self, pipe: RedisPipe, *, ttl: float = 330, prefix: str = "sec:nc:") -> None:
        super().__init__()
        self._pipe = pipe
        self._ttl_ms = str(int(ttl * 1000))
        self._prefix = prefix

    def guard(self, nonce: str, nc: int) -> NonceGuard:
        """This check, for the location store to carry out with a REGISTER's binding writes (one
        round trip for both: `GroupCommit.write_guarded`). Same key, same test as `accept`."""
        return NonceGuard(self._prefix + nonce, nc, int(self._ttl_ms))

    async def _check(self, batch: list[tuple[str, int, float]]) -> list[bool]:
        return await self._pipe.evalsha(  # type: ignore[return-value]
            _ACCEPT,
            keys=[self._prefix + nonce for nonce, _, _ in batch],
            args=[self._ttl_ms, *(nc for _, nc, _ in batch)],
        )


class SqliteNonceCounts(_BatchedCounts):
    """Nonce counts in the embedded store's SQLite file, for the engines of one machine: one
    short write transaction per batch (on the loop, like the location store's writes)."""

    def __init__(self, db: sqlite3.Connection, *, ttl: float = 330, prune_every: float = 30) -> None:
        super().__init__()
        self._db = db
        self._ttl = ttl
        self._prune_every = prune_every
        self._pruned = 0.0
        db.execute(
            "CREATE TABLE IF NOT EXISTS nonce_counts"
            " (nonce TEXT PRIMARY KEY, nc INTEGER NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID"
        )
        db.execute("CREATE INDEX IF NOT EXISTS nonce_counts_expiry ON nonce_counts (expires_at)")

    async def _check(self, batch: list[tuple[str, int, float]]) -> list[bool]:
        verdicts = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for nonce, nc, now in batch:
                # Inserted, or raised: one row changed. A count not above the stored one: none.
                changed = self._db.execute(
                    "INSERT INTO nonce_counts VALUES (?, ?, ?) ON CONFLICT (nonce) DO UPDATE"
                    " SET nc = excluded.nc WHERE nonce_counts.nc < excluded.nc",
                    (nonce, nc, now + self._ttl),
                ).rowcount
                verdicts.append(changed == 1)
            now = batch[-1][2]
            if now - self._pruned >= self._prune_every:
                self._pruned = now
                self._db.execute("DELETE FROM nonce_counts WHERE expires_at < ?", (now,))
        return verdicts


# --- bans ----------------------------------------------------------------------------------------


class BanBook(Protocol):
    async def exchange(self, outgoing: list[tuple[str, float]], *, now: float) -> list[tuple[str, float]]:
        """Publishes this engine's new bans (ip, until) and returns the bans every engine
        published since the previous call (this one's included)."""
        ...


class MemoryBanBook:
    """One engine alone: its guard already holds every ban there is."""

    async def exchange(self, outgoing: list[tuple[str, float]], *, now: float) -> list[tuple[str, float]]:
        return []


class RedisBanBook:
    def __init__(
        self,
        client: redis_asyncio.Redis,
        *,
        key: str = "sec:bans",
        max_entries: int = 100_000,
        batch: int = 1000,
    ) -> None:
        self._redis = client
        self._key = key
        self._max_entries = max_entries
        self._batch = batch
        self._last_id = "0-0"  # at start: every ban still in the stream

    async def exchange(self, outgoing: list[tuple[str, float]], *, now: float) -> list[tuple[str, float]]:
        if outgoing:
            async with self._redis.pipeline(transaction=False) as pipe:
                for ip, until in outgoing:
                    fields = {"ip": ip, "until": repr(until)}
                    pipe.xadd(self._key, fields, maxlen=self._max_entries, approximate=False)
                await pipe.execute()
        found: list[tuple[str, float]] = []
        while True:
            reply = await self._redis.xread({self._key: self._last_id}, count=self._batch)
            entries = reply[0][1] if reply else []
            for entry_id, fields in entries:
                self._last_id = entry_id
                text = {_text(k): _text(v) for k, v in fields.items()}
                with contextlib.suppress(KeyError, ValueError):
                    found.append((text["ip"], float(text["until"])))
            if len(entries) < self._batch:
                return found


class SqliteBanBook:
    """Bans in the embedded store's SQLite file, read by row id the way the stream is read."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS bans"
            " (id INTEGER PRIMARY KEY AUTOINCREMENT, ip TEXT NOT NULL, until REAL NOT NULL)"
        )
        self._last_id = 0

    async def exchange(self, outgoing: list[tuple[str, float]], *, now: float) -> list[tuple[str, float]]:
        if outgoing:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT INTO bans (ip, until) VALUES (?, ?)", outgoing)
                self._db.execute("DELETE FROM bans WHERE until <= ?", (now,))
        rows = self._db.execute(
            "SELECT id, ip, until FROM bans WHERE id > ? ORDER BY id", (self._last_id,)
        ).fetchall()
        if rows:
            self._last_id = rows[-1][0]
        return [(ip, until) for _, ip, until in rows]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class BanSync:
    """Feeds the guard's bans to the book and the book's bans to the guard.

    Wire `notify` as the guard's `on_ban`, then run `run()` on the engine's loop.
    """

    guard: AbuseGuard
    book: BanBook
    interval: float = 0.5
    clock: Callable[[], float] = time.time
    _outgoing: list[tuple[str, float]] = field(default_factory=list)
    _wake: asyncio.Event | None = None
    syncs: int = 0

    def notify(self, ip: str, until: float) -> None:
        self._outgoing.append((ip, until))
        if self._wake is not None:
            self._wake.set()

    async def sync_once(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        try:
            incoming = await self.book.exchange(outgoing, now=self.clock())
        except Exception:
            self._outgoing[:0] = outgoing  # published with the next round
            raise
        now = self.clock()
        self.guard.merge_bans(dict(incoming), now)
        self.syncs += 1

    async def run(self) -> None:
        self._wake = asyncio.Event()
        failing = False
        while True:
            try:
                await self.sync_once()
                failing = False
            except Exception:  # noqa: BLE001 — Redis away: bans stay local until it returns
                if not failing:
                    log.warning("ban sync failed; retrying every %.1f s", self.interval, exc_info=True)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()


# --- wiring ----------------------------------------------------------------------------------------


@dataclass
class SharedSecurity:
    counts: digest.SharedNonceCountStore
    bans: BanBook
    ban_sync_interval: float = 0.5
    close: Callable[[], None] = lambda: None


def security_for(
    store: LocationStore, *, nonce_ttl: float, memory_counts: digest.MemoryNonceCountStore
) -> SharedSecurity:
    """Redis state beside a Redis location store (sharing its connection pool), else memory:
    `memory_counts` is the engine's own store, so REGISTER and INVITE checks use one table."""
    from telephony.location import RedisLocationStore, SqliteLocationStore

    if isinstance(store, RedisLocationStore):
        client = store._redis  # one connection pool for the bindings and the security state
        return SharedSecurity(counts=RedisNonceCounts(store.pipe, ttl=nonce_ttl), bans=RedisBanBook(client))
    if isinstance(store, SqliteLocationStore):
        # Its own connection to the same file, so its transactions never mix with the store's.
        path = store._db.execute("PRAGMA database_list").fetchone()[2]
        if path:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
            db.execute("PRAGMA synchronous=NORMAL")
            return SharedSecurity(
                counts=SqliteNonceCounts(db, ttl=nonce_ttl), bans=SqliteBanBook(db), close=db.close
            )
    return SharedSecurity(counts=MemoryNonceCounts(memory_counts), bans=MemoryBanBook())
