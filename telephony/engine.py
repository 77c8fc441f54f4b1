"""The SIP engine: wires transports, the pure SIP core, the registrar and the call handler.

One `Engine` per `sipserver` process. Everything here runs on one asyncio loop; blocking work
(database reads for configuration, Celery sends, the heartbeat) goes to threads. Several
engines share a port with SO_REUSEPORT and share state only through the location store, the
security state beside it (nonce counts and bans: telephony/shared_state.py) and the
configuration database (DESIGN.md "Scaling out").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from telephony import events as ev
from telephony.abuse import AbuseGuard, AbuseSettings, Verdict
from telephony.calls import CallHandler, CallSettings
from telephony.config import ConfigWatcher, EngineConfig
from telephony.event_sink import EventSink
from telephony.location import GroupCommit, LocationStore
from telephony.registrar import ALLOW, Registrar, RegistrarSettings
from telephony.shared_state import BanSync, SharedSecurity, security_for
from telephony.sip import digest
from telephony.sip.errors import ParseError
from telephony.sip.message import Request, Response, make_response, stamp_received
from telephony.sip.transaction import ServerTransaction
from telephony.sip.uas_checks import check_request
from telephony.stack import SipStack, TransactionUser
from telephony.tracing import TraceBuffer
from telephony.transport import Peer, Transports, TransportSettings

log = logging.getLogger("telephony.engine")

SUPPORTED_METHODS = frozenset(
    {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "REFER", "NOTIFY", "INFO"}
)
SUPPORTED_EXTENSIONS = frozenset({"path", "outbound", "replaces", "norefersub", "timer"})
ACCEPTED_BODIES = frozenset({"application/sdp", "message/sipfrag", "application/dtmf-relay"})


@dataclass
class EngineSettings:
    realm: str
    host: str = "127.0.0.1"
    port: int = 5060
    tls_port: int | None = 5061
    tls_cert: str = ""
    tls_key: str = ""
    var_dir: Path = Path("var")
    nonce_secret: bytes = b""
    abuse: AbuseSettings = field(default_factory=AbuseSettings)
    sweep_interval: float = 5.0
    heartbeat_interval: float = 5.0
    server_header: str = "SmartAlex Voice"
    calls: CallSettings | None = None  # None: CallSettings.from_django()
    digest_algorithms: tuple[str, ...] | None = None  # None: settings.SIP_DIGEST_ALGORITHMS


class Engine:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        store: LocationStore,
        watcher: ConfigWatcher,
        sink: EventSink,
        heartbeat: Callable[[], None] | None = None,
        security: SharedSecurity | None = None,
    ) -> None:
        self.settings = settings
        self.store = GroupCommit(store)
        self.watcher = watcher
        self.sink = sink
        self.heartbeat = heartbeat
        self.guard = AbuseGuard(settings.abuse, is_whitelisted=lambda ip: self.config.is_whitelisted(ip))
        # A trunk that starts allowing a banned address lets it in at once.
        watcher.listeners.append(lambda _config: self.guard.forget_whitelisted())
        nonces = digest.NonceFactory(settings.nonce_secret or os.urandom(32))
        nc_store = digest.MemoryNonceCountStore(ttl=nonces.lifetime + nonces.clock_skew)
        self.security = security or security_for(
            store,
            nonce_ttl=nonces.lifetime + nonces.clock_skew,
            memory_counts=nc_store,
        )
        self.ban_sync = BanSync(self.guard, self.security.bans, interval=self.security.ban_sync_interval)
        self.guard.on_ban = self.ban_sync.notify
        self.registrar = Registrar(
            settings=RegistrarSettings(realm=settings.realm, algorithms=_digest_algorithms(settings)),
            config=lambda: self.watcher.current,
            store=self.store,
            nonces=nonces,
            nc_store=nc_store,
            counts=self.security.counts,
            guard=self.guard,
            emit=sink.emit,
        )
        self.transports = Transports(self.on_message, TransportSettings(), on_parse_error=self._parse_error)
        self.stack = SipStack(
            self.transports.send,
            TransactionUser(on_request=self._on_request, on_ack=self._on_ack, on_cancel=self._on_cancel),
        )
        self.traces = TraceBuffer()
        self.transports.tap = self.traces.observe
        self.calls = CallHandler(self, settings.calls or CallSettings.from_django())
        self.counters = {"requests": 0, "responses": 0, "dropped": 0, "parse_errors": 0, "options": 0}
        self._tasks: list[asyncio.Task] = []
        self.node = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def config(self) -> EngineConfig:
        return self.watcher.current

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> dict[str, tuple[str, int]]:
        await self.watcher.start()
        restored = await self.registrar.warm(time.time())
        log.info("restored %d bindings from the location store", restored)
        s = self.settings
        await self.transports.listen_udp_and_tcp(s.host, s.port)
        if s.tls_port is not None:
            from telephony.tls import ensure_self_signed, server_context

            cert, key = (
                (s.tls_cert, s.tls_key) if s.tls_cert else ensure_self_signed(s.var_dir / "tls", s.realm)
            )
            await self.transports.listen_tls(s.host, s.tls_port, server_context(cert, key))
        await self.calls.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(coro)
            for coro in (
                self.watcher.run(),
                self.sink.run(),
                self._sweep_forever(),
                self._beat_forever(),
                self.ban_sync.run(),
            )
        ]
        from telephony.metrics import serve_engine_metrics  # Prometheus on 127.0.0.1:SIP_METRICS_PORT

        self._tasks.append(loop.create_task(serve_engine_metrics(self)))
        log.info("sipserver %s listening: %s", self.node, self.transports.local_addresses)
        return dict(self.transports.local_addresses)

    async def stop(self) -> None:
        await self.calls.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.sink.flush()
        self.stack.close()
        await self.transports.close()
        await self.store.close()
        self.security.close()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                self.traces.prune(time.time())
                await self.registrar.sweep(time.time())
            except Exception:  # noqa: BLE001 — the store may be away; try again next round
                log.warning("binding sweep failed", exc_info=True)

    async def _beat_forever(self) -> None:
        if self.heartbeat is None:
            return
        while True:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.heartbeat)
            await asyncio.sleep(self.settings.heartbeat_interval)

    # --- the message path ----------------------------------------------------------------------

    def _parse_error(self, error: Exception, peer: Peer) -> None:
        self.counters["parse_errors"] += 1

    def on_message(self, message: Request | Response, peer: Peer) -> None:
        if isinstance(message, Response):
            self.counters["responses"] += 1
            self.stack.receive(message, peer)
            return
        self.counters["requests"] += 1
        if self.guard.check(peer.ip, message.headers.get("User-Agent"), time.time()) is not Verdict.ALLOW:
            self.counters["dropped"] += 1
            return
        self.stack.receive(stamp_received(message, peer.ip, peer.port), peer)

    def _on_request(self, request: Request, peer: Peer, transaction: ServerTransaction) -> None:
        """A new request (retransmissions never get here: their transaction answers them)."""
        rejection = check_request(
            request,
            supported_methods=SUPPORTED_METHODS,
            supported_extensions=SUPPORTED_EXTENSIONS,
            accepted_content_types=ACCEPTED_BODIES,
            to_tag=_tag(request),
        )
        if rejection is not None:
            self.respond(transaction, rejection)
            return
        match request.method:
            case "OPTIONS":
                self.counters["options"] += 1
                self.respond(transaction, self.options_response(request))
            case "REGISTER":
                asyncio.get_running_loop().create_task(self._register(request, peer, transaction))
            case _ if self.calls is not None:
                self.calls.on_request(request, peer, transaction)
            case _:
                self.respond(
                    transaction, make_response(request, 480, "No call handler", to_tag=_tag(request))
                )

    def _on_ack(self, request: Request, peer: Peer) -> None:
        if self.calls is not None:
            self.calls.on_ack(request, peer)

    def _on_cancel(
        self, request: Request, peer: Peer, transaction: ServerTransaction, invite: ServerTransaction | None
    ) -> None:
        if invite is None or self.calls is None:
            self.respond(transaction, make_response(request, 481, to_tag=_tag(request)))
            return
        self.calls.on_cancel(request, peer, transaction, invite)

    async def _register(self, request: Request, peer: Peer, transaction: ServerTransaction) -> None:
        stats = self.registrar.stats
        before = (stats.registrations, stats.unregistrations, stats.auth_failures)
        try:
            response = await self.registrar.handle(request, peer, time.time())
        except Exception:  # noqa: BLE001 — the store is away: never a 200 we could not keep
            log.exception("REGISTER failed")
            response = make_response(
                request, 503, "Service Unavailable", to_tag=_tag(request), headers=[("Retry-After", "5")]
            )
        self.respond(transaction, response)
        changed = (stats.registrations, stats.unregistrations, stats.auth_failures) != before
        if changed or response.status not in (200, 401):
            self.report_trace("register", request, f"{response.status} {response.reason}")

    def report_trace(self, kind: str, request: Request, outcome: str, trunk_id: int | None = None) -> None:
        """Reports the exchange of `request`'s Call-ID as a trace (first registrations, failures, calls)."""
        username = _claimed_username(request)
        if trunk_id is None and username:
            trunk = self.config.by_username.get(username)
            trunk_id = trunk.id if trunk else None
        local = "{}:{}".format(*self.transports.local_addresses.get("udp", ("", 0)))
        messages = tuple(m.as_dict(local) for m in self.traces.take(request.call_id))
        if messages:
            self.sink.emit(
                ev.SipTraceRecorded(
                    kind=kind,
                    call_id=request.call_id,
                    trunk_id=trunk_id,
                    username=username,
                    outcome=outcome,
                    messages=messages,
                    at=time.time(),
                )
            )

    def options_response(self, request: Request) -> Response:
        return make_response(
            request,
            200,
            to_tag=_tag(request),
            headers=[
                ("Allow", ALLOW),
                ("Accept", "application/sdp"),
                ("Supported", "path, outbound, replaces"),
                ("Server", self.settings.server_header),
            ],
        )

    def respond(self, transaction: ServerTransaction, response: Response) -> None:
        if "Server" not in response.headers:
            response = replace(
                response, headers=response.headers.with_added("Server", self.settings.server_header)
            )
        self.stack.respond(transaction, response)


def _digest_algorithms(settings: EngineSettings) -> tuple[str, ...]:
    if settings.digest_algorithms is not None:
        return settings.digest_algorithms
    from django.conf import settings as django_settings

    return tuple(django_settings.SIP_DIGEST_ALGORITHMS)


def _claimed_username(request: Request) -> str:
    """The digest username a request claims (not proven), for traces; "" when there is none."""
    value = request.headers.get("Authorization") or request.headers.get("Proxy-Authorization")
    if not value:
        return ""
    try:
        return digest.parse_credentials(value).username[:128]
    except ParseError:
        return ""


def _tag(request: Request) -> str:
    # Deterministic per request, so a response rebuilt for a retransmission keeps its To tag.
    return hashlib.blake2s(f"{request.call_id}|{request.cseq}".encode(), digest_size=6).hexdigest()
