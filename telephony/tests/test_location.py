"""Both location stores behave the same: save, refresh, remove, expiry claimed once, persistence."""

import asyncio

import pytest
import redis

from telephony.location import Binding, RedisLocationStore, SqliteLocationStore

REDIS_URL = "redis://127.0.0.1:6379/14"


def binding(trunk_id=1, contact="sip:pbx@203.0.113.5:5060", expires_at=1000.0, cseq=1):
    return Binding(
        trunk_id=trunk_id,
        contact=contact,
        expires_at=expires_at,
        call_id="c1",
        cseq=cseq,
        transport="udp",
        source_ip="203.0.113.5",
        source_port=5060,
        user_agent="PBX",
        path=("<sip:p>",),
    )


@pytest.fixture(params=["redis", "sqlite"])
def make_store(request, tmp_path):
    if request.param == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        return lambda: RedisLocationStore(REDIS_URL)
    return lambda: SqliteLocationStore(tmp_path / "loc.sqlite3")


def run(coro):
    return asyncio.run(coro)


def test_save_refresh_and_remove(make_store):
    async def scenario():
        store = make_store()
        await store.save(binding())
        await store.save(binding(contact="sip:pbx@203.0.113.5:5062"))
        await store.save(binding(expires_at=2000.0, cseq=2))  # a refresh replaces, never duplicates
        found = sorted(await store.bindings(1, now=500), key=lambda b: b.contact)
        assert [(b.contact, b.cseq) for b in found] == [
            ("sip:pbx@203.0.113.5:5060", 2),
            ("sip:pbx@203.0.113.5:5062", 1),
        ]
        assert found[0].path == ("<sip:p>",)
        assert await store.bindings(1, now=1500) == [found[0]]
        await store.remove(1, "sip:pbx@203.0.113.5:5060")
        assert [b.contact for b in await store.bindings(1, now=0)] == ["sip:pbx@203.0.113.5:5062"]
        assert len(await store.remove_all(1)) == 1 and await store.bindings(1, now=0) == []
        await store.close()

    run(scenario())


def test_expired_bindings_are_claimed_once_by_one_engine(make_store):
    async def scenario():
        first, second = make_store(), make_store()
        await first.save(binding(trunk_id=1, expires_at=100))
        await first.save(binding(trunk_id=2, expires_at=100))
        await first.save(binding(trunk_id=3, expires_at=900))
        claimed = await first.claim_expired(now=200)
        assert sorted(b.trunk_id for b in claimed) == [1, 2]
        assert await second.claim_expired(now=200) == []
        assert [b.trunk_id for b in await second.bindings(3, now=200)] == [3]
        await first.close()
        await second.close()

    run(scenario())


def test_bindings_survive_a_new_store_instance(make_store):
    async def scenario():
        store = make_store()
        await store.save(binding(trunk_id=7))
        # No close(): as if the engine were killed.
        again = make_store()
        assert [b.trunk_id for b in await again.bindings(7, now=0)] == [7]
        await again.close()

    run(scenario())


def test_group_commit_batches_concurrent_writes_and_reports_failures(make_store):
    from telephony.location import GroupCommit

    async def scenario():
        store = GroupCommit(make_store())
        await asyncio.gather(*(store.save(binding(trunk_id=i)) for i in range(1, 51)))
        assert store.batches <= 2
        assert [b.trunk_id for b in await store.bindings(42, now=0)] == [42]
        await asyncio.gather(store.remove(42, binding().contact), store.save(binding(trunk_id=99)))
        assert await store.bindings(42, now=0) == [] and len(await store.bindings(99, now=0)) == 1

        class Broken:
            async def apply(self, saves, removals):
                raise ConnectionError("store away")

        failing = GroupCommit(Broken())
        results = await asyncio.gather(
            failing.save(binding()), failing.save(binding(trunk_id=2)), return_exceptions=True
        )
        assert all(isinstance(r, ConnectionError) for r in results)
        await store.close()

    run(scenario())


def test_all_bindings_skips_expired(make_store):
    async def scenario():
        store = make_store()
        await store.save(binding(trunk_id=1, expires_at=100))
        await store.save(binding(trunk_id=2, expires_at=900))
        assert [b.trunk_id for b in await store.all_bindings(now=500)] == [2]
        await store.close()

    run(scenario())


def test_guarded_writes_apply_once_per_nonce_count_and_a_replay_writes_nothing():
    from telephony.location import GroupCommit, NonceGuard

    redis.Redis.from_url(REDIS_URL).flushdb()

    async def scenario():
        store = GroupCommit(RedisLocationStore(REDIS_URL))
        assert store.guarded_writes
        guard = NonceGuard("sec:nc:n1", 1, 60_000)
        assert await store.write_guarded([binding(trunk_id=1)], [], guard)
        # The same count again (a replay, here with another contact): refused, nothing stored.
        hijack = binding(trunk_id=1, contact="sip:attacker@198.51.100.9:5060")
        assert not await store.write_guarded([hijack], [(1, binding().contact)], guard)
        assert [b.contact for b in await store.bindings(1, now=0)] == [binding().contact]
        # A higher count passes; a replay inside one batch is refused like any other, and the
        # other requests of the batch (and unguarded writes) are not held back by it.
        second = NonceGuard("sec:nc:n1", 2, 60_000)
        verdicts = await asyncio.gather(
            store.write_guarded([binding(trunk_id=2)], [], second),
            store.write_guarded([binding(trunk_id=3)], [], second),
            store.write_guarded([], [(1, binding().contact)], NonceGuard("sec:nc:n2", 1, 60_000)),
            store.save(binding(trunk_id=4)),
        )
        assert verdicts[:3] == [True, False, True] and store.batches == 3
        assert [len(await store.bindings(t, now=0)) for t in (1, 2, 3, 4)] == [0, 1, 0, 1]
        # The count is kept with the nonce's lifetime, as the standalone check keeps it.
        ttl = redis.Redis.from_url(REDIS_URL).pttl("sec:nc:n1")
        assert 0 < ttl <= 60_000
        await store.close()

    run(scenario())


def test_a_store_without_nonce_checks_refuses_guarded_writes(tmp_path):
    from telephony.location import GroupCommit, NonceGuard

    async def scenario():
        store = GroupCommit(SqliteLocationStore(tmp_path / "loc.sqlite3"))
        assert not store.guarded_writes
        with pytest.raises(TypeError):
            await store.write_guarded([binding()], [], NonceGuard("sec:nc:n1", 1, 60_000))
        assert await store.bindings(1, now=0) == []

    run(scenario())
