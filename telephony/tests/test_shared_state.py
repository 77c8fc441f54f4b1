"""Nonce counts and bans shared by the engines of a deployment, against the real Redis (db 14,
keys under a prefix unique to each test), a real SQLite file and the in-memory fallback."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import pytest
import redis.asyncio as redis_asyncio

from telephony.abuse import AbuseGuard, AbuseSettings, Verdict
from telephony.location import RedisLocationStore, SqliteLocationStore
from telephony.redis_pipe import RedisPipe
from telephony.shared_state import (
    BanSync,
    MemoryBanBook,
    MemoryNonceCounts,
    RedisBanBook,
    RedisNonceCounts,
    SqliteBanBook,
    SqliteNonceCounts,
    security_for,
)
from telephony.sip import digest

REDIS_URL = "redis://127.0.0.1:6379/14"
NOW = 1_800_000_000.0


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def prefix():
    prefix = f"test:helpera:{uuid.uuid4().hex}:"
    yield prefix

    async def clean():
        client = redis_asyncio.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    run(clean())


class Views:
    """Makes engines' views of one shared store (separate connections, shared state) and closes
    them in the loop that used them."""

    def __init__(self, kind: str, prefix: str, path) -> None:
        self.kind, self.prefix, self.path = kind, prefix, path
        self.opened: list = []

    def __call__(self, count: int = 2, **kw):
        if self.kind == "redis":
            pipes = [RedisPipe(REDIS_URL) for _ in range(count)]
            self.opened += pipes
            return [RedisNonceCounts(p, prefix=self.prefix + "nc:", **kw) for p in pipes]
        dbs = [sqlite3.connect(self.path, isolation_level=None, timeout=5) for _ in range(count)]
        self.opened += dbs
        return [SqliteNonceCounts(db, **kw) for db in dbs]

    def run(self, scenario) -> None:
        async def wrapped():
            try:
                await scenario()
            finally:
                for connection in self.opened:
                    if isinstance(connection, sqlite3.Connection):
                        connection.close()
                    else:
                        await connection.close()

        run(wrapped())


@pytest.fixture(params=["redis", "sqlite"])
def backend(request, prefix, tmp_path):
    return Views(request.param, prefix, tmp_path / "shared.sqlite3")


def engines(prefix: str, count: int = 2, **kw):
    """`count` engines' views of one Redis: separate clients, shared keys."""
    pipes = [RedisPipe(REDIS_URL) for _ in range(count)]
    return pipes, [RedisNonceCounts(p, prefix=prefix + "nc:", **kw) for p in pipes]


async def close(clients):
    for client in clients:
        await (client.close() if isinstance(client, RedisPipe) else client.aclose())


# --- nonce counts --------------------------------------------------------------------------------


def test_a_count_is_accepted_once_at_whichever_engine_sees_it_first(backend):
    async def scenario():
        a, b = backend()
        assert await a.accept("n1", 1, now=NOW)
        assert not await b.accept("n1", 1, now=NOW)  # the replay, at the other engine
        assert not await a.accept("n1", 1, now=NOW)
        assert await b.accept("n1", 2, now=NOW)  # the client's next request
        assert await a.accept("n1", 7, now=NOW)  # gaps are fine
        assert not await b.accept("n1", 5, now=NOW)  # going back is not
        assert await b.accept("n2", 1, now=NOW)  # another nonce has its own count
        assert await a.accept("n3", 0, now=NOW)  # RFC 2069 (no qop): good for one request
        assert not await b.accept("n3", 0, now=NOW)

    backend.run(scenario)


def test_concurrent_checks_go_in_one_batch_and_a_replay_inside_it_is_refused(backend):
    async def scenario():
        (a,) = backend(count=1)
        nonces = [f"n{i}" for i in range(200)]
        verdicts = await asyncio.gather(
            *(a.accept(n, 1, now=NOW) for n in nonces), a.accept("n0", 1, now=NOW)
        )
        assert verdicts == [True] * 200 + [False]
        assert a.batches == 1 and a.checks == 201

    backend.run(scenario)


def test_engines_racing_on_one_replay_accept_it_exactly_once(backend):
    async def scenario():
        counts = backend(count=4)
        verdicts = await asyncio.gather(*(c.accept("raced", 3, now=NOW) for c in counts for _ in range(5)))
        assert verdicts.count(True) == 1

    backend.run(scenario)


def test_counts_expire_with_the_nonce(prefix):
    async def scenario():
        clients, (a,) = engines(prefix, count=1, ttl=330)
        try:
            await a.accept("n1", 1, now=NOW)
            ttl_ms = await clients[0].command("PTTL", prefix + "nc:n1")
            assert 320_000 < ttl_ms <= 330_000
            await a.accept("n1", 2, now=NOW)  # a later count keeps the first use's deadline
            assert await clients[0].command("PTTL", prefix + "nc:n1") <= ttl_ms
            assert await clients[0].command("GET", prefix + "nc:n1") == b"2"
        finally:
            await close(clients)

    run(scenario())


def test_sqlite_counts_are_pruned_after_their_nonce_ran_out(tmp_path):
    async def scenario():
        db = sqlite3.connect(tmp_path / "loc.sqlite3", isolation_level=None)
        counts = SqliteNonceCounts(db, ttl=330, prune_every=30)
        await counts.accept("old", 1, now=NOW)
        await counts.accept("new", 1, now=NOW + 300)
        assert db.execute("SELECT count(*) FROM nonce_counts").fetchone()[0] == 2
        await counts.accept("newer", 1, now=NOW + 331)  # "old" expired at NOW + 330
        assert sorted(r[0] for r in db.execute("SELECT nonce FROM nonce_counts")) == ["new", "newer"]
        db.close()

    run(scenario())


def test_an_unreachable_redis_fails_the_check_instead_of_accepting(prefix):
    async def scenario():
        pipe = RedisPipe("redis://127.0.0.1:1/0", timeout=1)  # nothing listens there
        counts = RedisNonceCounts(pipe, prefix=prefix)
        try:
            with pytest.raises(OSError):  # connection refused, never True
                await counts.accept("n1", 1, now=NOW)
            assert not counts._flushing  # the next check tries again
        finally:
            await pipe.close()

    run(scenario())


def test_memory_counts_are_the_cores_store():
    store = digest.MemoryNonceCountStore()
    counts = MemoryNonceCounts(store)
    assert run(counts.accept("n1", 1, now=NOW))
    assert not store.accept("n1", 1, now=NOW)  # an INVITE check sees the REGISTER's count


# --- bans ------------------------------------------------------------------------------------------


def test_a_ban_published_by_one_engine_is_read_by_the_others_and_by_a_late_starter(prefix):
    async def scenario():
        clients = [redis_asyncio.Redis.from_url(REDIS_URL) for _ in range(3)]
        key = prefix + "bans"
        a, b = RedisBanBook(clients[0], key=key), RedisBanBook(clients[1], key=key)
        try:
            assert await b.exchange([], now=NOW) == []
            await a.exchange([("198.51.100.7", NOW + 3600)], now=NOW)
            assert await b.exchange([], now=NOW) == [("198.51.100.7", NOW + 3600)]
            assert await b.exchange([], now=NOW) == []  # each ban is read once
            late = RedisBanBook(clients[2], key=key, batch=1)  # reads in several rounds
            await a.exchange([("198.51.100.8", NOW + 3600)], now=NOW)
            assert [ip for ip, _ in await late.exchange([], now=NOW)] == ["198.51.100.7", "198.51.100.8"]
        finally:
            await close(clients)

    run(scenario())


def test_the_stream_keeps_the_last_bans_only_and_skips_expired_ones(prefix):
    async def scenario():
        client = redis_asyncio.Redis.from_url(REDIS_URL)
        key = prefix + "bans"
        book = RedisBanBook(client, key=key, max_entries=3)
        guard = AbuseGuard(AbuseSettings(trusted_sources=()))
        try:
            await book.exchange([(f"198.51.100.{i}", NOW + 3600) for i in range(5)], now=NOW)
            assert await client.xlen(key) == 3
            late = RedisBanBook(client, key=key)
            await book.exchange([("203.0.113.1", NOW - 1)], now=NOW)  # already over
            guard.merge_bans(dict(await late.exchange([], now=NOW)), NOW)
            assert sorted(guard.bans) == ["198.51.100.3", "198.51.100.4"]
        finally:
            await client.aclose()

    run(scenario())


def test_sqlite_bans_are_shared_by_the_engines_of_one_machine(tmp_path):
    async def scenario():
        dbs = [sqlite3.connect(tmp_path / "loc.sqlite3", isolation_level=None, timeout=5) for _ in range(3)]
        a, b = SqliteBanBook(dbs[0]), SqliteBanBook(dbs[1])
        assert await b.exchange([], now=NOW) == []
        await a.exchange([("198.51.100.7", NOW + 3600), ("198.51.100.9", NOW + 10)], now=NOW)
        assert await b.exchange([], now=NOW) == [("198.51.100.7", NOW + 3600), ("198.51.100.9", NOW + 10)]
        assert await b.exchange([], now=NOW) == []
        await a.exchange([("198.51.100.8", NOW + 3600)], now=NOW + 20)  # prunes what ran out
        late = SqliteBanBook(dbs[2])
        assert [ip for ip, _ in await late.exchange([], now=NOW + 20)] == ["198.51.100.7", "198.51.100.8"]
        for db in dbs:
            db.close()

    run(scenario())


def test_ban_sync_shares_bans_but_never_a_whitelisted_or_trusted_source(prefix):
    async def scenario():
        clients = [redis_asyncio.Redis.from_url(REDIS_URL) for _ in range(2)]
        key = prefix + "bans"
        settings = AbuseSettings(max_failures=2, trusted_sources=("127.0.0.0/8",))
        guards = [
            AbuseGuard(settings),
            AbuseGuard(settings, is_whitelisted=lambda ip: ip == "203.0.113.5"),
        ]
        syncs = [
            BanSync(g, RedisBanBook(c, key=key), clock=lambda: NOW)
            for g, c in zip(guards, clients, strict=True)
        ]
        for guard, sync in zip(guards, syncs, strict=True):
            guard.on_ban = sync.notify
        try:
            for ip in ("198.51.100.1", "203.0.113.5", "127.0.0.1"):
                for _ in range(2):
                    guards[0].record_auth_failure(ip, NOW)
            assert set(guards[0].bans) == {"198.51.100.1", "203.0.113.5"}  # 127/8 is trusted
            await syncs[0].sync_once()
            await syncs[1].sync_once()
            # The second engine's trunk allows 203.0.113.5: never banned there.
            assert set(guards[1].bans) == {"198.51.100.1"}
            assert guards[1].check("198.51.100.1", None, NOW + 1) is Verdict.BANNED
            assert guards[1].check("203.0.113.5", None, NOW + 1) is Verdict.ALLOW
            assert guards[1].counters["bans"] == 0  # adopted, not decided here: not re-published
            assert syncs[1]._outgoing == []
        finally:
            await close(clients)

    run(scenario())


def test_a_ban_that_could_not_be_published_goes_with_the_next_round():
    class Flaky(MemoryBanBook):
        def __init__(self):
            self.fail, self.seen = True, []

        async def exchange(self, outgoing, *, now):
            if self.fail:
                raise ConnectionError("redis away")
            self.seen += outgoing
            return []

    book = Flaky()
    sync = BanSync(AbuseGuard(AbuseSettings(trusted_sources=())), book, clock=lambda: NOW)
    sync.notify("198.51.100.1", NOW + 3600)
    with pytest.raises(ConnectionError):
        run(sync.sync_once())
    book.fail = False
    run(sync.sync_once())
    assert book.seen == [("198.51.100.1", NOW + 3600)]


def test_the_run_loop_publishes_a_new_ban_without_waiting_for_the_interval(prefix):
    async def scenario():
        clients = [redis_asyncio.Redis.from_url(REDIS_URL) for _ in range(2)]
        key = prefix + "bans"
        guard = AbuseGuard(AbuseSettings(trusted_sources=()))
        sync = BanSync(guard, RedisBanBook(clients[0], key=key), interval=30)
        guard.on_ban = sync.notify
        task = asyncio.get_running_loop().create_task(sync.run())
        try:
            await asyncio.sleep(0.2)  # the first round ran; the next is 30 s away
            guard.ban("198.51.100.3", until=NOW + 3600)
            other = RedisBanBook(clients[1], key=key)
            for _ in range(100):
                if await other.exchange([], now=NOW):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the ban was not published")
        finally:
            task.cancel()
            await close(clients)

    run(scenario())


def test_a_trunk_that_starts_allowing_a_banned_source_lets_it_in():
    allowed: set[str] = set()
    guard = AbuseGuard(AbuseSettings(trusted_sources=()), is_whitelisted=lambda ip: ip in allowed)
    guard.ban("203.0.113.5", until=NOW + 3600)
    assert guard.check("203.0.113.5", None, NOW) is Verdict.BANNED
    allowed.add("203.0.113.5")
    guard.forget_whitelisted()
    assert guard.check("203.0.113.5", None, NOW) is Verdict.ALLOW


# --- where the state lives -------------------------------------------------------------------------


def test_security_lives_beside_the_location_store(tmp_path):
    memory = digest.MemoryNonceCountStore()
    embedded = security_for(
        SqliteLocationStore(tmp_path / "loc.sqlite3"), nonce_ttl=330, memory_counts=memory
    )
    assert isinstance(embedded.counts, SqliteNonceCounts) and isinstance(embedded.bans, SqliteBanBook)
    embedded.close()
    redis_store = RedisLocationStore(REDIS_URL)
    shared = security_for(redis_store, nonce_ttl=330, memory_counts=memory)
    assert isinstance(shared.counts, RedisNonceCounts) and isinstance(shared.bans, RedisBanBook)
    run(redis_store.close())
    alone = security_for(SqliteLocationStore(":memory:"), nonce_ttl=330, memory_counts=memory)
    assert isinstance(alone.counts, MemoryNonceCounts) and alone.counts.store is memory
    assert isinstance(alone.bans, MemoryBanBook)


# --- through the registrar ---------------------------------------------------------------------------


def test_a_register_replayed_to_a_sibling_registrar_is_refused(tmp_path):
    """Two registrars (two engines of one machine) on one SQLite file: the 200 at the first is
    not repeated at the second, and the next count is accepted there."""
    from telephony.tests.test_registrar import REALM, Harness

    path = tmp_path / "shared.sqlite3"
    first, second = Harness(tmp_path), Harness(tmp_path)
    connections = []
    for harness in (first, second):
        connections.append(sqlite3.connect(path, isolation_level=None, timeout=5))
        harness.registrar.counts = SqliteNonceCounts(connections[-1])
    challenge = first.register()
    values = challenge.headers.get_all("WWW-Authenticate")

    def auth(nc: int) -> str:
        return digest.answer_challenge(
            values, method="REGISTER", uri=f"sip:{REALM}", username="sa0001", password="s3cret-pass",
            cnonce="c0ffee", nc=nc,
        )  # fmt: skip

    assert first.register(authorization=auth(1)).status == 200
    second.cseq = first.cseq
    replay = second.register(authorization=auth(1))
    assert replay.status == 401 and "stale" not in " ".join(replay.headers.get_all("WWW-Authenticate"))
    assert second.register(authorization=auth(2)).status == 200
    assert first.registrar.nc_store.accept("unrelated", 1, now=NOW)  # the per-engine table is apart
    for connection in connections:
        connection.close()


def test_with_redis_a_registers_replay_check_rides_with_its_binding_write(tmp_path, monkeypatch):
    """Redis checks the nonce count in the same call that writes the binding (one round trip):
    a replay to a sibling registrar, even one naming another contact, writes nothing and gets a
    fresh challenge, and one whose answer would be an error (423) is a replay first."""
    from telephony.location import GroupCommit
    from telephony.tests.test_registrar import REALM, Harness

    redis_sync = __import__("redis").Redis.from_url(REDIS_URL)
    redis_sync.flushdb()
    loop = asyncio.new_event_loop()
    monkeypatch.setattr(asyncio, "run", loop.run_until_complete)  # the harness's calls share one loop
    first, second = Harness(tmp_path), Harness(tmp_path)
    for harness in (first, second):
        store = RedisLocationStore(REDIS_URL)
        harness.registrar.store = GroupCommit(store)
        harness.registrar.counts = RedisNonceCounts(store.pipe)
    challenge = first.register()

    def auth(nc: int) -> str:
        return digest.answer_challenge(
            challenge.headers.get_all("WWW-Authenticate"), method="REGISTER", uri=f"sip:{REALM}",
            username="sa0001", password="s3cret-pass", cnonce="c0ffee", nc=nc,
        )  # fmt: skip

    assert first.register(authorization=auth(1)).status == 200
    second.cseq = first.cseq
    hijack = second.register(authorization=auth(1), contact="<sip:attacker@198.51.100.9:5060>")
    assert hijack.status == 401 and "stale" not in " ".join(hijack.headers.get_all("WWW-Authenticate"))
    assert redis_sync.hkeys("loc:1") == [b"sip:pbx@203.0.113.5:5060"]
    assert second.register(authorization=auth(1), expires="30").status == 401  # not 423
    assert second.register(authorization=auth(2), expires="30").status == 423
    assert second.register(authorization=auth(3)).status == 200
    # The standalone check was never used: every count went with a write.
    assert first.registrar.counts.checks == second.registrar.counts.checks == 0
    assert first.registrar.store.batches == 1 and second.registrar.store.batches == 4
    for harness in (first, second):
        loop.run_until_complete(harness.registrar.store.close())
    loop.close()
