"""One pipelined asyncio connection to Redis, for the REGISTER path.

redis-py's asyncio client spends about 300 µs of CPU per command here (a pool checkout under
an `asyncio.timeout`, the retry wrapper, a stream reader with its own timeout). A registrar
below a few thousand REGISTERs a second sees them one at a time, so its batches hold one
request and each registration paid that twice (nonce count, binding write): measured with
`bench/register_cpu.py --wave 1` and py-spy, a third of the engine's CPU. This connection
writes each batch of commands in one `write` and matches the replies in order; hiredis (the C
parser redis-py itself uses when installed) packs and parses the protocol. redis-py stays for
everything off the hot path (start-up loads, sweeps, the ban stream).

Failure is loud and bounded: a command that gets no reply within `timeout` fails, the
connection is dropped and the next command opens a new one (Redis restarted, or a failover).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from urllib.parse import unquote, urlparse

import hiredis

Command = Sequence[str | bytes | int | float]


class RedisError(Exception):
    """Redis answered a command with an error reply."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.reason = "closed by the server"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if not self.waiting:
                self.drop("a reply nobody asked for")  # the stream is out of step
                return
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        error = ConnectionError(f"Redis connection lost: {exc or self.reason}")
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def send(self, commands: Sequence[Command]) -> list[asyncio.Future]:
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in commands]
        self.waiting.extend(waiters)
        self.transport.write(b"".join(hiredis.pack_command(tuple(c)) for c in commands))  # type: ignore[union-attr]
        return waiters

    def drop(self, reason: str = "closed") -> None:
        self.reason = reason
        if self.transport is not None:
            self.transport.close()
        self.connection_lost(None)


class Script:
    """A Lua script sent by its SHA1 (EVALSHA), and once in full when Redis does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class RedisPipe:
    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "redis":
            raise ValueError(f"RedisPipe speaks redis:// only, not {parsed.scheme}://")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.db = int(parsed.path.lstrip("/") or 0)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.timeout = timeout
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()

    # --- commands ------------------------------------------------------------------------------

    async def command(self, *args: str | bytes | int | float) -> object:
        (reply,) = await self.pipeline([args])
        if isinstance(reply, hiredis.ReplyError):
            raise RedisError(str(reply))
        return reply

    async def pipeline(self, commands: Sequence[Command]) -> list[object]:
        """Sends the commands in one write; their replies in order (error replies included, as
        `hiredis.ReplyError` values: the caller decides what a failed command means)."""
        connection = await self._connected()
        waiters = connection.send(commands)
        loop = asyncio.get_running_loop()
        # One timer per batch rather than an asyncio.timeout per command (that was the cost).
        timer = loop.call_later(self.timeout, connection.drop, f"no reply within {self.timeout} s")
        try:
            await waiters[-1]  # replies come in order: the last one done means all are
        finally:
            timer.cancel()
        return [w.result() for w in waiters]

    async def transaction(self, commands: Sequence[Command]) -> list[object]:
        """MULTI … EXEC in one write: all of the commands apply, or none (an error raises)."""
        replies = await self.pipeline([("MULTI",), *commands, ("EXEC",)])
        problems = [r for r in replies if isinstance(r, hiredis.ReplyError)]
        executed = replies[-1]
        if problems or not isinstance(executed, list):
            raise RedisError(str(problems[0]) if problems else "transaction aborted")
        failed = [r for r in executed if isinstance(r, hiredis.ReplyError)]
        if failed:
            raise RedisError(str(failed[0]))
        return executed

    async def evalsha(self, script: Script, keys: Sequence[str], args: Sequence[str | int | float]) -> object:
        call = (len(keys), *keys, *args)
        reply = (await self.pipeline([("EVALSHA", script.sha, *call)]))[0]
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = (await self.pipeline([("EVAL", script.source, *call)]))[0]  # Redis keeps it now
        if isinstance(reply, hiredis.ReplyError):
            raise RedisError(str(reply))
        return reply

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.drop()
            self._connection = None

    # --- the connection --------------------------------------------------------------------------

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and not connection.lost:
            return connection
        async with self._connecting:
            if self._connection is None or self._connection.lost:
                self._connection = await asyncio.wait_for(self._open(), self.timeout)
            return self._connection

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        setup: list[Command] = []
        if self.password is not None:
            setup.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        if setup:
            for reply in await asyncio.gather(*connection.send(setup)):
                if isinstance(reply, hiredis.ReplyError):
                    connection.drop()
                    raise RedisError(str(reply))
        return connection
