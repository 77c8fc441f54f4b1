"""The engine's lean Redis connection against the real Redis on 127.0.0.1 (and a server that
never answers): ordering, transactions, scripts, error replies, reconnects, timeouts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from telephony.redis_pipe import RedisError, RedisPipe, Script

URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def key():
    prefix = f"test:pipe:{uuid.uuid4().hex}:"
    yield prefix
    plain = redis.Redis.from_url(URL)
    for name in plain.scan_iter(match=prefix + "*"):
        plain.delete(name)
    plain.close()


def run(scenario):
    async def closing():
        pipe = RedisPipe(URL)
        try:
            return await scenario(pipe)
        finally:
            await pipe.close()

    return asyncio.run(closing())


def test_replies_come_back_in_the_order_of_the_commands_and_in_the_url_database(key):
    async def scenario(pipe):
        replies = await pipe.pipeline([("SET", key + "a", "1"), ("INCR", key + "a"), ("GET", key + "a")])
        assert replies == [b"OK", 2, b"2"]
        assert await pipe.command("HSET", key + "h", "f", 1.5) == 1

    run(scenario)
    assert redis.Redis.from_url(URL).hget(key + "h", "f") == b"1.5"  # db 14, as the URL says


def test_a_transaction_applies_everything_or_raises(key):
    async def scenario(pipe):
        done = await pipe.transaction([("HSET", key + "h", "c", "x"), ("ZADD", key + "z", 10.25, "m")])
        assert done == [1, 1]
        await pipe.command("SET", key + "s", "a string")
        with pytest.raises(RedisError, match="WRONGTYPE"):
            await pipe.transaction([("HSET", key + "s", "c", "x")])
        with pytest.raises(RedisError, match="unknown command"):
            await pipe.transaction([("NOSUCHCOMMAND", key)])
        assert await pipe.command("ZSCORE", key + "z", "m") == b"10.25"

    run(scenario)


def test_an_error_reply_raises_for_one_command_and_the_connection_goes_on(key):
    async def scenario(pipe):
        await pipe.command("SET", key + "s", "text")
        with pytest.raises(RedisError, match="WRONGTYPE"):
            await pipe.command("HVALS", key + "s")
        assert await pipe.command("GET", key + "s") == b"text"

    run(scenario)


def test_a_script_unknown_to_redis_is_sent_in_full_once(key):
    script = Script(f"-- {uuid.uuid4().hex}\nreturn {{KEYS[1], ARGV[1]}}")

    async def scenario(pipe):
        assert await pipe.command("SCRIPT", "EXISTS", script.sha) == [0]
        assert await pipe.evalsha(script, [key], ["7"]) == [key.encode(), b"7"]
        assert await pipe.command("SCRIPT", "EXISTS", script.sha) == [1]
        assert await pipe.evalsha(script, [key], [8]) == [key.encode(), b"8"]

    run(scenario)


def test_a_connection_killed_by_the_server_is_replaced_on_the_next_command(key):
    async def scenario(pipe):
        first = await pipe.command("CLIENT", "ID")
        redis.Redis.from_url(URL).client_kill_filter(_id=str(first))
        await asyncio.sleep(0.1)  # the loop sees the end of the stream
        assert await pipe.command("CLIENT", "ID") != first
        assert await pipe.command("SET", key + "after", "1") == b"OK"

    run(scenario)


def test_nothing_listening_fails_fast_instead_of_hanging():
    async def scenario():
        pipe = RedisPipe("redis://127.0.0.1:1/0", timeout=1)
        with pytest.raises(OSError):
            await pipe.command("PING")

    asyncio.run(scenario())


def test_a_server_that_never_answers_fails_the_command_after_the_timeout_and_is_left():
    async def scenario():
        accepted = []

        async def silent(reader, writer):
            accepted.append(writer)
            await reader.read()  # reads, never writes

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pipe = RedisPipe(f"redis://127.0.0.1:{port}", timeout=0.3)
        try:
            with pytest.raises(ConnectionError, match="no reply within 0.3 s"):
                await pipe.command("PING")
            with pytest.raises(ConnectionError):
                await pipe.command("PING")
            assert len(accepted) == 2  # the silent connection was dropped, a new one tried
        finally:
            await pipe.close()
            server.close()

    asyncio.run(scenario())


def test_a_url_that_is_not_redis_is_refused():
    with pytest.raises(ValueError, match="redis://"):
        RedisPipe("rediss://127.0.0.1:6379/0")
