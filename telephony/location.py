"""The location store: where each trunk's PBX can be reached (its REGISTER bindings).

Shared by every `sipserver` process and persistent, so bindings survive a `kill -9` of an
engine: Redis in production, a SQLite file under VAR_DIR in the embedded default. Refreshes
write here, never to PostgreSQL (DESIGN.md convention 9).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol

from telephony.redis_pipe import RedisPipe, Script


@dataclass(frozen=True)
class Binding:
    trunk_id: int
    contact: str  # the Contact URI as registered
    expires_at: float
    call_id: str
    cseq: int
    transport: str  # udp | tcp | tls
    source_ip: str
    source_port: int
    user_agent: str = ""
    registered_at: float = 0.0
    path: tuple[str, ...] = ()
    q: float | None = None
    # The engine and connection that received it: a TCP/TLS flow is only reachable through them.
    flow: str = ""

    def expires_in(self, now: float) -> int:
        return max(0, int(round(self.expires_at - now)))

    def to_json(self) -> str:
        # Not dataclasses.asdict: its recursive deep copy was a fifth of the store's CPU per
        # REGISTER, and every field here is already a JSON value (path a tuple of str).
        return json.dumps({name: getattr(self, name) for name in _BINDING_FIELDS}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Binding:
        data = json.loads(text)
        data["path"] = tuple(data.get("path") or ())
        return cls(**data)


_BINDING_FIELDS = tuple(f.name for f in fields(Binding))


@dataclass(frozen=True, slots=True)
class NonceGuard:
    """A REGISTER's replay check, carried out by the store with the request's binding writes:
    the writes apply only if `count` is above the count stored under `key` (which it becomes).
    One round trip instead of two per authenticated REGISTER (see `RedisLocationStore`)."""

    key: str
    count: int
    ttl_ms: int


class LocationStore(Protocol):
    async def bindings(self, trunk_id: int, *, now: float) -> list[Binding]: ...

    async def all_bindings(self, *, now: float) -> list[Binding]:
        """Every live binding: what an engine loads once at start."""
        ...

    async def save(self, binding: Binding) -> None: ...

    async def remove(self, trunk_id: int, contact: str) -> None: ...

    async def apply(self, saves: list[Binding], removals: list[tuple[int, str]]) -> None:
        """Many saves and removals in one round trip (see `GroupCommit`)."""
        ...

    async def remove_all(self, trunk_id: int) -> list[Binding]: ...

    async def claim_expired(self, *, now: float, limit: int = 500) -> list[Binding]:
        """Removes and returns bindings past their expiry; each one is claimed by one engine only."""
        ...

    async def close(self) -> None: ...


# --- Redis ---------------------------------------------------------------------------------------

_EXPIRY_KEY = "loc:expiry"

# Remove a binding only if it is still expired: a refresh that raced the sweep must win.
_CLAIM_SCRIPT = """
local member = ARGV[1]
local score = redis.call('ZSCORE', KEYS[1], member)
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('ZREM', KEYS[1], member)
local sep = string.find(member, '|', 1, true)
local hash = 'loc:' .. string.sub(member, 1, sep - 1)
local contact = string.sub(member, sep + 1)
local value = redis.call('HGET', hash, contact)
redis.call('HDEL', hash, contact)
return value
"""


# One call for the writes of several REGISTERs, each behind its nonce count (NonceGuard). ARGV per
# request: count key ('' for none), count, TTL in ms, number of saves, then (hash, contact, binding,
# expiry, member) per save, number of removals, then (hash, contact, member) per removal. The
# count test is the one of shared_state's accept script; a request refused there writes nothing.
_GUARDED_WRITES_SCRIPT = """
local out, i, r = {}, 1, 0
while i <= #ARGV do
  r = r + 1
  local key, count, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local fresh = true
  if key ~= '' then
    local last = redis.call('GET', key)
    if last and tonumber(last) >= tonumber(count) then
      fresh = false
    elseif last then
      redis.call('SET', key, count, 'KEEPTTL')
    else
      redis.call('SET', key, count, 'PX', ttl)
    end
  end
  i = i + 3
  local saves = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, saves do
    if fresh then
      redis.call('HSET', ARGV[i], ARGV[i + 1], ARGV[i + 2])
      redis.call('ZADD', KEYS[1], ARGV[i + 3], ARGV[i + 4])
    end
    i = i + 5
  end
  local removals = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, removals do
    if fresh then
      redis.call('HDEL', ARGV[i], ARGV[i + 1])
      redis.call('ZREM', KEYS[1], ARGV[i + 2])
    end
    i = i + 3
  end
  out[r] = fresh and 1 or 0
end
return out
"""
_GUARDED_WRITES = Script(_GUARDED_WRITES_SCRIPT)

GuardedWrite = tuple[list[Binding], list[tuple[int, str]], "NonceGuard | None"]


def _member(trunk_id: int, contact: str) -> str:
    return f"{trunk_id}|{contact}"


class RedisLocationStore:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        # A bounded pool that waits rather than fails: group commit keeps the need to one or two.
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=16, timeout=5)
        self._redis = redis.Redis(connection_pool=pool)
        self._claim = self._redis.register_script(_CLAIM_SCRIPT)
        # The REGISTER path (reads, group-committed writes, nonce counts) goes through one lean
        # pipelined connection; redis-py's client costs ten times its CPU per command.
        self.pipe = RedisPipe(url)

    async def bindings(self, trunk_id: int, *, now: float) -> list[Binding]:
        values = await self.pipe.command("HVALS", f"loc:{trunk_id}")
        return [b for b in map(Binding.from_json, values) if b.expires_at > now]

    async def all_bindings(self, *, now: float) -> list[Binding]:
        members = await self._redis.zrangebyscore(_EXPIRY_KEY, now, "+inf")
        async with self._redis.pipeline(transaction=False) as pipe:
            for member in members:
                trunk_id, _, contact = member.decode().partition("|")
                pipe.hget(f"loc:{trunk_id}", contact)
            values = await pipe.execute()
        return [Binding.from_json(v) for v in values if v]

    async def save(self, binding: Binding) -> None:
        await self.apply([binding], [])

    async def remove(self, trunk_id: int, contact: str) -> None:
        await self.apply([], [(trunk_id, contact)])

    async def apply(self, saves: list[Binding], removals: list[tuple[int, str]]) -> None:
        commands: list[tuple] = [("HSET", f"loc:{b.trunk_id}", b.contact, b.to_json()) for b in saves]
        if saves:
            scored = [part for b in saves for part in (b.expires_at, _member(b.trunk_id, b.contact))]
            commands.append(("ZADD", _EXPIRY_KEY, *scored))
        for trunk_id, contact in removals:
            commands.append(("HDEL", f"loc:{trunk_id}", contact))
            commands.append(("ZREM", _EXPIRY_KEY, _member(trunk_id, contact)))
        if commands:
            await self.pipe.transaction(commands)

    async def apply_guarded(self, writes: list[GuardedWrite]) -> list[bool]:
        """Each REGISTER's writes, applied only if its nonce count is fresh; one script call."""
        args: list[str | int | float] = []
        for saves, removals, guard in writes:
            args += [guard.key, guard.count, guard.ttl_ms] if guard is not None else ["", 0, 0]
            args.append(len(saves))
            for b in saves:
                args += [
                    f"loc:{b.trunk_id}",
                    b.contact,
                    b.to_json(),
                    b.expires_at,
                    _member(b.trunk_id, b.contact),
                ]
            args.append(len(removals))
            for trunk_id, contact in removals:
                args += [f"loc:{trunk_id}", contact, _member(trunk_id, contact)]
        verdicts = await self.pipe.evalsha(_GUARDED_WRITES, keys=[_EXPIRY_KEY], args=args)
        return [bool(v) for v in verdicts]  # type: ignore[union-attr]

    async def remove_all(self, trunk_id: int) -> list[Binding]:
        values = await self._redis.hvals(f"loc:{trunk_id}")
        removed = [Binding.from_json(v) for v in values]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"loc:{trunk_id}")
            for b in removed:
                pipe.zrem(_EXPIRY_KEY, _member(trunk_id, b.contact))
            await pipe.execute()
        return removed

    async def claim_expired(self, *, now: float, limit: int = 500) -> list[Binding]:
        members = await self._redis.zrangebyscore(_EXPIRY_KEY, "-inf", now, start=0, num=limit)
        claimed = []
        for member in members:
            value = await self._claim(keys=[_EXPIRY_KEY], args=[member, now])
            if value:
                claimed.append(Binding.from_json(value))
        return claimed

    async def close(self) -> None:
        await self.pipe.close()
        await self._redis.aclose()


# --- Embedded (SQLite) ---------------------------------------------------------------------------


class SqliteLocationStore:
    """One small file shared by the engines of one machine. Each call is one short statement
    (tens of microseconds in WAL mode), so it runs on the event loop without a thread hop."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS bindings (trunk_id INTEGER, contact TEXT, expires_at REAL, data TEXT,"
            " PRIMARY KEY (trunk_id, contact))"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS bindings_expiry ON bindings (expires_at)")
        self._lock = asyncio.Lock()

    async def bindings(self, trunk_id: int, *, now: float) -> list[Binding]:
        rows = self._db.execute(
            "SELECT data FROM bindings WHERE trunk_id = ? AND expires_at > ?", (trunk_id, now)
        ).fetchall()
        return [Binding.from_json(r[0]) for r in rows]

    async def all_bindings(self, *, now: float) -> list[Binding]:
        rows = self._db.execute("SELECT data FROM bindings WHERE expires_at > ?", (now,)).fetchall()
        return [Binding.from_json(r[0]) for r in rows]

    async def save(self, binding: Binding) -> None:
        await self.apply([binding], [])

    async def remove(self, trunk_id: int, contact: str) -> None:
        await self.apply([], [(trunk_id, contact)])

    async def apply(self, saves: list[Binding], removals: list[tuple[int, str]]) -> None:
        with self._db:  # one transaction: one fsync-free WAL commit for the whole batch
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO bindings VALUES (?, ?, ?, ?)",
                [(b.trunk_id, b.contact, b.expires_at, b.to_json()) for b in saves],
            )
            self._db.executemany("DELETE FROM bindings WHERE trunk_id = ? AND contact = ?", removals)

    async def remove_all(self, trunk_id: int) -> list[Binding]:
        rows = self._db.execute(
            "DELETE FROM bindings WHERE trunk_id = ? RETURNING data", (trunk_id,)
        ).fetchall()
        return [Binding.from_json(r[0]) for r in rows]

    async def claim_expired(self, *, now: float, limit: int = 500) -> list[Binding]:
        async with self._lock:
            rows = self._db.execute(
                "DELETE FROM bindings WHERE rowid IN (SELECT rowid FROM bindings WHERE expires_at <= ? LIMIT ?)"
                " RETURNING data",
                (now, limit),
            ).fetchall()
        return [Binding.from_json(r[0]) for r in rows]

    async def close(self) -> None:
        self._db.close()


class GroupCommit:
    """Batches the writes of concurrent REGISTERs into one store round trip.

    Each caller awaits its own write, so a 200 OK is only sent once the binding is stored (never a
    200 we could not keep); while one batch is in flight the next one fills up. One connection
    serves thousands of registrations per second instead of one connection per request.
    Over a store that can check nonce counts with the writes (`guarded_writes`), a REGISTER's
    replay check rides in the same batch (`write_guarded`).
    """

    def __init__(self, store: LocationStore) -> None:
        self.store = store
        self.guarded_writes = hasattr(store, "apply_guarded")
        self._pending: list[tuple[GuardedWrite, asyncio.Future[bool]]] = []
        self._flushing = False
        self.batches = 0

    async def save(self, binding: Binding) -> None:
        await self._queue(([binding], [], None))

    async def remove(self, trunk_id: int, contact: str) -> None:
        await self._queue(([], [(trunk_id, contact)], None))

    async def write_guarded(
        self, saves: list[Binding], removals: list[tuple[int, str]], guard: NonceGuard
    ) -> bool:
        """Applies the writes if the nonce count is fresh; False (nothing written) for a replay."""
        if not self.guarded_writes:
            raise TypeError(f"{type(self.store).__name__} cannot check nonce counts")
        return await self._queue((saves, removals, guard))

    async def _queue(self, write: GuardedWrite) -> bool:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._pending.append((write, waiter))
        if not self._flushing:
            self._flushing = True
            loop.create_task(self._flush())
        return await waiter

    async def _flush(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # let requests already read in this loop turn join the batch
                batch, self._pending = self._pending, []
                writes = [write for write, _ in batch]
                try:
                    verdicts = await self._apply(writes)
                except Exception as error:  # noqa: BLE001 — each waiter learns that its write failed
                    for _, waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(error)
                    continue
                self.batches += 1
                for (_, waiter), verdict in zip(batch, verdicts, strict=True):
                    if not waiter.done():
                        waiter.set_result(verdict)
        finally:
            self._flushing = False

    async def _apply(self, writes: list[GuardedWrite]) -> list[bool]:
        if self.guarded_writes:
            return await self.store.apply_guarded(writes)  # type: ignore[attr-defined]
        await self.store.apply(
            [b for saves, _, _ in writes for b in saves], [r for _, removals, _ in writes for r in removals]
        )
        return [True] * len(writes)

    # Reads and the rest go straight to the store.
    async def bindings(self, trunk_id: int, *, now: float) -> list[Binding]:
        return await self.store.bindings(trunk_id, now=now)

    async def all_bindings(self, *, now: float) -> list[Binding]:
        return await self.store.all_bindings(now=now)

    async def apply(self, saves: list[Binding], removals: list[tuple[int, str]]) -> None:
        await self.store.apply(saves, removals)

    async def remove_all(self, trunk_id: int) -> list[Binding]:
        return await self.store.remove_all(trunk_id)

    async def claim_expired(self, *, now: float, limit: int = 500) -> list[Binding]:
        return await self.store.claim_expired(now=now, limit=limit)

    async def close(self) -> None:
        await self.store.close()


def location_store_from_settings() -> LocationStore:
    from django.conf import settings

    if settings.REDIS_URL:
        return RedisLocationStore(settings.REDIS_URL)
    return SqliteLocationStore(Path(settings.VAR_DIR) / "locations.sqlite3")
