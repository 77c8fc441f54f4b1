"""The engine's only socket code: SIP over UDP, TCP and TLS on asyncio.

Everything protocol-shaped happens in `telephony.sip`; this module moves bytes and tells the
engine who sent them. Two rules shape it:

- Replies go back where the packet came from (the source address and port, or the same TCP/TLS
  connection), never to a host named inside the message. That is RFC 3581 behaviour for every
  peer, it gets answers through NAT, and it means the engine never resolves or contacts a host
  that a message merely names.
- A peer cannot make us hold much: datagrams over the size limit are dropped, a connection that
  is idle, or that dribbles a header slower than `header_timeout`, is closed, and connections per
  source address are capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from telephony.retransmit_cache import METHODS as RETRANSMIT_METHODS
from telephony.retransmit_cache import RetransmitCache
from telephony.sip.errors import MalformedMessage
from telephony.sip.message import Request, Response, error_response
from telephony.sip.parser import PONG, InvalidMessage, KeepAlive, Limits, StreamFramer, parse_message

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message came from, and so where its answer goes."""

    transport: str  # "udp" | "tcp" | "tls"
    ip: str
    port: int
    # The connection a stream message arrived on; None for UDP.
    flow: int | None = None

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    def __str__(self) -> str:
        return f"{self.transport}:{self.ip}:{self.port}"


MessageHandler = Callable[[Request | Response, Peer], None]


@dataclass
class TransportSettings:
    limits: Limits = field(default_factory=Limits)
    max_datagram: int = 16 * 1024
    idle_timeout: float = 600.0
    header_timeout: float = 10.0
    max_connections_per_ip: int = 64
    max_connections: int = 20_000
    tls_handshake_timeout: float = 10.0
    udp_buffer_bytes: int = 8 * 1024 * 1024


@dataclass
class TransportStats:
    datagrams_in: int = 0
    datagrams_out: int = 0
    oversized_dropped: int = 0
    parse_errors: int = 0
    error_responses: int = 0
    connections_opened: int = 0
    connections_refused: int = 0
    connections_closed_idle: int = 0
    connections_closed_slow: int = 0
    keepalives: int = 0


class Transports:
    """Listens on UDP, TCP and TLS, hands parsed messages to `handler`, sends what it is given."""

    def __init__(
        self,
        handler: MessageHandler,
        settings: TransportSettings | None = None,
        *,
        on_parse_error: Callable[[MalformedMessage, Peer], None] | None = None,
    ) -> None:
        self.handler = handler
        self.settings = settings or TransportSettings()
        self.stats = TransportStats()
        self.on_parse_error = on_parse_error
        self._udp: dict[tuple[str, int], asyncio.DatagramTransport] = {}
        self._udp_default: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: dict[int, _StreamConnection] = {}
        self._per_ip: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._sweeper: asyncio.Task | None = None
        self.local_addresses: dict[str, tuple[str, int]] = {}
        self._adopted: dict[str, socket.socket] = {}
        self.retransmits = RetransmitCache()
        # Sees every message in and out (direction, bytes, peer): SIP traces for support.
        self.tap: Callable[[str, bytes, Peer], None] | None = None

    # --- listening -----------------------------------------------------------------------------

    def adopt(self, kind: str, sock: socket.socket) -> None:
        """Serves `sock`, already bound by a supervisor (`sipserver --workers`), on the next
        `listen_*` of that kind instead of binding one: the supervisor holds the port's sockets
        in a fixed order, which is what its SO_REUSEPORT program's indexes refer to."""
        self._adopted[kind] = sock

    async def listen_udp(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        sock = self._adopted.pop("udp", None)
        if sock is None:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Several engine processes share the port; the kernel spreads packets by source address.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, self.settings.udp_buffer_bytes)
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
        address = transport.get_extra_info("sockname")[:2]
        self._udp[address] = transport
        self._udp_default = self._udp_default or transport
        self.local_addresses["udp"] = address
        self._start_sweeper()
        return address

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        return await self._listen_stream("tcp", host, port, None)

    async def listen_udp_and_tcp(self, host: str, port: int, attempts: int = 8) -> tuple[str, int]:
        """UDP and TCP on one port number. With port 0 (tests, dev) the kernel picks the UDP port,
        and on a busy machine an outgoing TCP connection may already hold that number: then let
        go of the UDP socket and draw again."""
        for attempt in range(attempts):
            address = await self.listen_udp(host, port)
            try:
                await self.listen_tcp(host, address[1])
                return address
            except OSError:
                if port != 0 or attempt == attempts - 1:
                    raise
                self._forget_udp(address)
        raise AssertionError("unreachable")

    def _forget_udp(self, address: tuple[str, int]) -> None:
        transport = self._udp.pop(address)
        if self._udp_default is transport:
            self._udp_default = next(iter(self._udp.values()), None)
        transport.close()

    async def listen_tls(self, host: str, port: int, context: ssl.SSLContext) -> tuple[str, int]:
        return await self._listen_stream("tls", host, port, context)

    async def _listen_stream(self, kind: str, host: str, port: int, context: ssl.SSLContext | None):
        loop = asyncio.get_running_loop()
        sock = self._adopted.pop(kind, None)
        where = {"sock": sock} if sock is not None else {"host": host, "port": port, "reuse_port": True}
        server = await loop.create_server(
            lambda: _StreamConnection(self, kind),
            **where,
            ssl=context,
            ssl_handshake_timeout=self.settings.tls_handshake_timeout if context else None,
            backlog=1024,
        )
        self._servers.append(server)
        address = server.sockets[0].getsockname()[:2]
        self.local_addresses[kind] = address
        self._start_sweeper()
        return address

    # --- sending -------------------------------------------------------------------------------

    def send(self, data: bytes, peer: Peer) -> bool:
        """Sends to a peer; False when a stream peer's connection is gone (nothing is dialled)."""
        if self.tap is not None:
            self.tap("out", data, peer)
        if peer.transport == "udp":
            if self._udp_default is None:
                return False
            if data[:8] == b"SIP/2.0 ":
                self.retransmits.response_sent(data)
            self._udp_default.sendto(data, (peer.ip, peer.port))
            self.stats.datagrams_out += 1
            return True
        connection = self._connections.get(peer.flow) if peer.flow is not None else None
        if connection is None or connection.closed:
            return False
        connection.write(data)
        return True

    def send_message(self, message: Request | Response, peer: Peer) -> bool:
        return self.send(message.to_bytes(), peer)

    # --- receiving -----------------------------------------------------------------------------

    def _deliver(self, message: Request | Response, peer: Peer) -> None:
        try:
            self.handler(message, peer)
        except Exception:  # a bug in one request's handling must not stop the server
            log.exception("handler failed for %s from %s", type(message).__name__, peer)

    def _rejected(self, error: MalformedMessage, peer: Peer) -> None:
        self.stats.parse_errors += 1
        if self.on_parse_error is not None:
            self.on_parse_error(error, peer)
        reply = error_response(error)
        if reply is not None:
            self.stats.error_responses += 1
            self.send(reply.to_bytes(), peer)

    def _datagram(self, data: bytes, address: tuple) -> None:
        self.stats.datagrams_in += 1
        if len(data) > self.settings.max_datagram:
            self.stats.oversized_dropped += 1
            return
        peer = Peer("udp", address[0], address[1])
        if data in (b"\r\n\r\n", b"\r\n") or not data.strip():
            return  # NAT keep-alive datagrams (RFC 5626 §3.5.2 uses STUN; many PBXs send CRLF)
        if self.tap is not None:
            self.tap("in", data, peer)
        if data.startswith(RETRANSMIT_METHODS):
            cached = self.retransmits.check(data, peer, time.monotonic())
            if cached is not RetransmitCache.NEW:
                if cached is not None:
                    self.send(cached, peer)
                return
        try:
            message = parse_message(data, limits=self.settings.limits)
        except MalformedMessage as error:
            self._rejected(error, peer)
            return
        self._deliver(message, peer)

    # --- stream connections --------------------------------------------------------------------

    def _admit(self, connection: _StreamConnection) -> bool:
        ip = connection.peer_ip
        if (
            len(self._connections) >= self.settings.max_connections
            or self._per_ip.get(ip, 0) >= self.settings.max_connections_per_ip
        ):
            self.stats.connections_refused += 1
            return False
        connection.id = next(self._ids)
        self._connections[connection.id] = connection
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        self.stats.connections_opened += 1
        return True

    def _forget(self, connection: _StreamConnection) -> None:
        if self._connections.pop(connection.id, None) is not None:
            left = self._per_ip.get(connection.peer_ip, 1) - 1
            if left:
                self._per_ip[connection.peer_ip] = left
            else:
                self._per_ip.pop(connection.peer_ip, None)

    def _start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        """Closes idle connections and those stuck half-way through a message."""
        s = self.settings
        for connection in list(self._connections.values()):
            if now - connection.last_activity > s.idle_timeout:
                self.stats.connections_closed_idle += 1
                connection.abort()
            elif connection.partial_since is not None and now - connection.partial_since > s.header_timeout:
                self.stats.connections_closed_slow += 1
                connection.abort()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        for connection in list(self._connections.values()):
            connection.abort()
        for transport in self._udp.values():
            transport.close()
        for server in self._servers:
            await server.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: Transports) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.owner._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: nothing to do but carry on.
        log.debug("udp error: %s", exc)


class _StreamConnection(asyncio.Protocol):
    def __init__(self, owner: Transports, kind: str) -> None:
        self.owner = owner
        self.kind = kind
        self.id = 0
        self.transport: asyncio.Transport | None = None
        self.framer = StreamFramer(limits=owner.settings.limits, on_bytes=self._tap_in)
        self.peer: Peer | None = None
        self.peer_ip = ""
        self.closed = False
        self.last_activity = time.monotonic()
        self.partial_since: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        ip, port = transport.get_extra_info("peername")[:2]
        self.peer_ip = ip
        if not self.owner._admit(self):
            self.closed = True
            transport.abort()
            return
        self.peer = Peer(self.kind, ip, port, self.id)

    def data_received(self, data: bytes) -> None:
        if self.closed or self.peer is None:
            return
        now = time.monotonic()
        self.last_activity = now
        try:
            items = self.framer.feed(data)
        except MalformedMessage as error:
            for item in error.preceding:
                self._handle(item)
            self.owner._rejected(error, self.peer)
            if error.close_connection:
                self.close()
            return
        for item in items:
            self._handle(item)
        self.partial_since = (self.partial_since or now) if self.framer.buffered else None

    def _handle(self, item: object) -> None:
        if isinstance(item, KeepAlive):
            self.owner.stats.keepalives += 1
            self.write(PONG)
        elif isinstance(item, InvalidMessage):
            self.owner._rejected(item.error, self.peer)
        elif isinstance(item, Request | Response):
            self.owner._deliver(item, self.peer)

    def _tap_in(self, data: bytes) -> None:
        """The bytes as they arrived (a trace must show what the peer sent, not our re-serialisation)."""
        if self.owner.tap is not None and self.peer is not None:
            self.owner.tap("in", data, self.peer)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.owner._forget(self)
