"""The engine's call handler: new INVITEs, in-dialog requests, ACKs and CANCELs.

Everything here runs on the engine's loop and does no blocking I/O: configuration comes from the
in-memory snapshot, the workspace limits from a copy refreshed off the loop whenever the
configuration changes, and the directory for the agent from `agents.AgentRuntime`'s cache.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telephony import events as ev
from telephony.calls.agents import AgentRuntime
from telephony.calls.call import Call, CallState
from telephony.calls.routing import Rejection, caller_identity, dialled_numbers, over_limit, route
from telephony.config import EngineConfig, TrunkConfig
from telephony.external_agent import ExternalAgentServer
from telephony.media.endpoint import RtpPortAllocator
from telephony.sip import digest
from telephony.sip.dialog import Dialog, DialogId, DialogTable
from telephony.sip.errors import PeerError
from telephony.sip.message import Request, make_response
from telephony.sip.refer import answer_refer_notify
from telephony.sip.transaction import ServerTransaction
from telephony.transport import Peer

if TYPE_CHECKING:
    from telephony.engine import Engine

log = logging.getLogger("telephony.calls")

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
UNKNOWN_DID_REPORT_INTERVAL = 60.0


@dataclass
class CallSettings:
    rtp_port_min: int = 10000
    rtp_port_max: int = 60000
    # Seconds to ring (180) before answering; 0 answers at once (the product promises 1–2 s).
    answer_delay: float = 0.0
    notify_timeout: float = 10.0  # no NOTIFY this long after a REFER's 202: the transfer failed
    transfer_ring_timeout: float = 60.0  # the extension rings this long at most
    bye_timeout: float = 4.0
    duration_grace: float = 10.0  # the engine's backstop after the agent's own time limit
    agent_mode: str = "receptionist"  # "receptionist" | "dtmf" (the fallback agent)
    bridge_fallback: bool = True  # PBX refuses REFER → INVITE the extension and relay media
    # Matcher for a trunk's directory (runs in a thread); None: the extensions app via the DB.
    directory: Callable[[TrunkConfig], Any] | None = None
    # {tenant_id: max concurrent calls} (runs in a thread); None: read from the DB.
    tenant_limits: Callable[[], dict[int, int]] | None = None
    # The external-agent WebSocket (telephony/external_agent.py) on the engine's host; None: off.
    agent_ws_port: int | None = None

    @classmethod
    def from_django(cls) -> CallSettings:
        try:
            from django.conf import settings

            return cls(
                rtp_port_min=settings.RTP_PORT_MIN,
                rtp_port_max=settings.RTP_PORT_MAX,
                agent_ws_port=settings.AGENT_WS_PORT,
            )
        except Exception:  # noqa: BLE001 — no Django configured (a bare engine in a unit test)
            return cls()


def tenant_limits_from_db() -> dict[int, int]:
    from django.db import connections

    from smartalex.tenancy.models import Tenant

    try:
        return dict(Tenant.objects.values_list("id", "max_concurrent_calls"))
    finally:
        connections.close_all()


class CallHandler:
    def __init__(self, engine: Engine, settings: CallSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.ports = RtpPortAllocator(settings.rtp_port_min, settings.rtp_port_max)
        self.dialogs = DialogTable()
        self.agents = AgentRuntime(settings, config=lambda: engine.config)
        self.calls: dict[str, Call] = {}
        self.trunk_calls: Counter[int] = Counter()
        self.tenant_calls: Counter[int] = Counter()
        self.tenant_limits: dict[int, int] = {}
        self.stats: Counter[str] = Counter()
        # Transfers by outcome (accepted, refused, timeout, failed) for the engine's /metrics.
        self.transfers: Counter[str] = Counter({o: 0 for o in ("accepted", "refused", "timeout", "failed")})
        self._by_dialog: dict[DialogId, Call] = {}
        self._unknown_dids: dict[tuple[int, str], float] = {}
        self._ringing: dict[ServerTransaction, Call] = {}
        self._local_ip: dict[str, str] = {}
        self._limits_task: asyncio.Task | None = None
        self._warm_up: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.external: ExternalAgentServer | None = None
        engine.watcher.listeners.append(self._config_changed)
        # Observers (the benchmark, tests): called with each call once it is answered.
        self.on_answered: list[Callable[[Call], None]] = []

    # --- life ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Engine start: the external-agent WebSocket, and the speech model loading in a thread
        (so the first call's receptionist does not wait for it)."""
        port = self.settings.agent_ws_port
        if port is not None:
            self.external = ExternalAgentServer(
                host=self.engine.settings.host, port=port, config=lambda: self.engine.config
            )
            try:
                await self.external.start()
            except OSError as error:
                log.warning("external agents not served on port %s: %s", port, error)
                self.external = None
        self.agents.external = self.external
        if self.settings.agent_mode == "receptionist":
            self._warm_up = asyncio.get_running_loop().create_task(self.agents.warm_up())

    # --- configuration -----------------------------------------------------------------------------

    def _config_changed(self, config: EngineConfig) -> None:
        load = self.settings.tenant_limits or tenant_limits_from_db
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._limits_task = loop.create_task(self._load_limits(load))

    async def _load_limits(self, load: Callable[[], dict[int, int]]) -> None:
        try:
            self.tenant_limits = await asyncio.to_thread(load)
        except Exception:  # noqa: BLE001 — keep the last known limits
            log.warning("could not read workspace call limits", exc_info=True)

    # --- addresses -----------------------------------------------------------------------------------

    def media_bind_host(self) -> str:
        return self.engine.settings.host

    def media_address(self, peer: Peer) -> str:
        """The address we put in SDP: the engine's host, or when it listens on every interface,
        the local address the kernel would use to reach this peer (connect() on UDP sends nothing)."""
        host = self.engine.settings.host
        if host not in WILDCARD_HOSTS:
            return host
        known = self._local_ip.get(peer.ip)
        if known is None:
            with socket.socket(socket.AF_INET6 if ":" in peer.ip else socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((peer.ip, 9))
                known = self._local_ip[peer.ip] = s.getsockname()[0]
        return known

    def signalling_address(self, peer: Peer) -> tuple[str, int]:
        addresses = self.engine.transports.local_addresses
        host, port = addresses.get(peer.transport) or addresses.get("udp", ("127.0.0.1", 5060))
        return (self.media_address(peer) if host in WILDCARD_HOSTS else host, port)

    def _track(self, task: asyncio.Task) -> None:
        """Tasks a call leaves running (answering, its life): stop() waits for or cancels them."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def new_tag() -> str:
        return secrets.token_hex(6)

    # --- what the engine hands us ------------------------------------------------------------------

    def on_request(self, request: Request, peer: Peer, transaction: ServerTransaction) -> None:
        if request.to.tag is None:
            if request.method == "INVITE":
                self._new_invite(request, peer, transaction)
            else:
                self._respond(transaction, make_response(request, 481, to_tag=self.new_tag()))
            return
        try:
            dialog = self.dialogs.match_request(request)
            dialog.receive_request(request)
        except PeerError as error:
            self._respond(transaction, make_response(request, error.status, error.reason))
            return
        call = self._by_dialog[dialog.id]
        match request.method:
            case "BYE":
                self._respond(transaction, make_response(request, 200))
                call.remote_bye(dialog)
            case "INVITE":
                call.reinvite(request, transaction, dialog)
            case "NOTIFY":
                progress, answer = answer_refer_notify(request)
                self._respond(transaction, answer)
                if progress is not None:
                    call.notifications.put_nowait(progress)
            case "INFO":
                self._respond(transaction, make_response(request, 200))
                content_type = request.content_type
                if content_type is not None and content_type.mime_type == "application/dtmf-relay":
                    call.info_digit(request)
            case "REFER":
                # We transfer calls; we do not let the PBX transfer the agent elsewhere.
                self._respond(transaction, make_response(request, 603, "Transfer not accepted"))
            case _:
                self._respond(transaction, make_response(request, 405, headers=[("Allow", _allow())]))

    def on_ack(self, request: Request, peer: Peer) -> None:
        try:
            dialog = self.dialogs.match_request(request)
        except PeerError:
            return  # the ACK of a call already over, or a stray
        call = self._by_dialog.get(dialog.id)
        if call is not None and request.cseq.number == call.invite.cseq.number:
            call.acked = True

    def on_cancel(
        self, request: Request, peer: Peer, transaction: ServerTransaction, invite: ServerTransaction
    ) -> None:
        self._respond(transaction, make_response(request, 200))
        call = self._ringing.get(invite)
        if call is not None:
            call.cancel()

    # --- a new call --------------------------------------------------------------------------------

    def _new_invite(self, request: Request, peer: Peer, transaction: ServerTransaction) -> None:
        self.stats["invites"] += 1
        # 100 Trying now rather than after the transaction layer's 200 ms: the PBX stops
        # retransmitting at once, even while a credential check or the media set-up runs.
        self._respond(transaction, make_response(request, 100))
        trunk = self._identify(request, peer, transaction)
        if trunk is not None:
            self._admit(request, peer, transaction, trunk)

    def _admit(
        self, request: Request, peer: Peer, transaction: ServerTransaction, trunk: TrunkConfig
    ) -> None:
        """The trunk is known: route the DID, apply the limits, answer."""
        config = self.engine.config
        decision = route(config, request, trunk)
        if isinstance(decision, Rejection):
            if decision.status == 404:
                self._unknown_did(request, peer, trunk)
            self._reject(request, transaction, decision, trunk)
            return
        trunk = decision.trunk
        limit = over_limit(
            trunk=trunk,
            trunk_calls=self.trunk_calls[trunk.id],
            tenant_calls=self.tenant_calls[trunk.tenant_id],
            tenant_limit=self.tenant_limits.get(trunk.tenant_id),
        )
        if limit is not None:
            self._reject(request, transaction, limit, trunk, did=decision.did)
            return
        call = Call(
            self,
            ref=uuid.uuid4().hex,
            invite=request,
            peer=peer,
            transaction=transaction,
            trunk=trunk,
            did=decision.did,
        )
        self.calls[call.ref] = call
        self.trunk_calls[trunk.id] += 1
        self.tenant_calls[trunk.tenant_id] += 1
        self._ringing[transaction] = call
        self._started(call.ref, request, trunk, decision.did)
        self._track(asyncio.get_running_loop().create_task(call.answer()))

    def _identify(self, request: Request, peer: Peer, transaction: ServerTransaction) -> TrunkConfig | None:
        """Like the registrar: a live registration's flow, else the source address of an
        IP-whitelist trunk, else digest credentials (a 407 challenge first)."""
        config = self.engine.config
        trunk_id = self.engine.registrar.trunk_on_flow(peer)
        if trunk_id is not None and trunk_id in config.trunks:
            return config.trunks[trunk_id]
        by_address = [t for t in config.trunks_for_source(peer.ip) if t.networks]
        if by_address:
            # Several workspaces may share one PBX: the trunk that owns the dialled number.
            numbers = dialled_numbers(request)
            owner = next(
                (t for t in by_address if any(config.by_did.get(n) is t for n in numbers)), by_address[0]
            )
            return owner
        registrar = self.engine.registrar
        now = time.time()
        authorization = request.headers.get("Proxy-Authorization")
        if authorization is None:
            self._challenge(request, transaction, now, stale=False)
            return None
        try:
            creds = digest.parse_credentials(authorization)
        except PeerError:
            self._respond(transaction, make_response(request, 400, "Malformed Proxy-Authorization"))
            return None
        trunk = config.by_username.get(creds.username)
        result = digest.authenticate(
            creds,
            method="INVITE",
            realm=registrar.settings.realm,
            nonces=registrar.nonces,
            now=now,
            ha1_lookup=lambda _user, algorithm: trunk.ha1(algorithm) if trunk is not None else None,
        )
        if result.ok and trunk is not None:
            if registrar.counts is not None:
                # The replay check is shared by every engine (a round trip): finish off the loop turn.
                check = self._after_shared_count(request, peer, transaction, trunk, creds, result, now)
                self._track(asyncio.get_running_loop().create_task(check))
                return None
            if registrar.nc_store.accept(creds.nonce, digest.nonce_count(creds), now=now):
                return trunk
            result = result.replayed()
        self._refuse_credentials(request, peer, transaction, result, now)
        return None

    async def _after_shared_count(
        self,
        request: Request,
        peer: Peer,
        transaction: ServerTransaction,
        trunk: TrunkConfig,
        creds: digest.Credentials,
        result: digest.AuthResult,
        now: float,
    ) -> None:
        counts = self.engine.registrar.counts
        assert counts is not None
        try:
            accepted = await counts.accept(creds.nonce, digest.nonce_count(creds), now=now)
        except Exception:  # noqa: BLE001 — the shared store is away: no call we cannot vouch for
            log.warning("nonce-count store unavailable; INVITE refused with 503", exc_info=True)
            self._respond(
                transaction, make_response(request, 503, "Service Unavailable", to_tag=self.new_tag())
            )
            return
        if accepted:
            self._admit(request, peer, transaction, trunk)
        else:
            self._refuse_credentials(request, peer, transaction, result.replayed(), now)

    def _refuse_credentials(
        self,
        request: Request,
        peer: Peer,
        transaction: ServerTransaction,
        result: digest.AuthResult,
        now: float,
    ) -> None:
        """A fresh challenge for what a client fixes by itself (stale or unknown nonce, a replay,
        an algorithm it chose that we do not offer); 403 for wrong credentials."""
        if result.stale or result.reason in (
            digest.AuthFailure.BAD_NONCE,
            digest.AuthFailure.REPLAY,
            digest.AuthFailure.UNSUPPORTED_SCHEME,
            digest.AuthFailure.UNSUPPORTED_ALGORITHM,
        ):
            self._challenge(request, transaction, now, stale=result.stale)
            return
        self.engine.guard.record_auth_failure(peer.ip, now)
        self._respond(transaction, make_response(request, 403, "Forbidden", to_tag=self.new_tag()))
        self.engine.report_trace("call", request, "403 Forbidden")

    def _challenge(
        self, request: Request, transaction: ServerTransaction, now: float, *, stale: bool
    ) -> None:
        registrar = self.engine.registrar
        values = digest.build_challenges(
            registrar.settings.realm,
            registrar.nonces.issue(now),
            stale=stale,
            algorithms=registrar.settings.algorithms_for(request.headers.get("User-Agent")),
        )
        self._respond(
            transaction,
            make_response(
                request, 407, to_tag=self.new_tag(), headers=[("Proxy-Authenticate", v) for v in values]
            ),
        )

    def _reject(
        self,
        request: Request,
        transaction: ServerTransaction,
        rejection: Rejection,
        trunk: TrunkConfig,
        *,
        did: str | None = None,
    ) -> None:
        self.stats[f"rejected_{rejection.status}"] += 1
        headers = [("Retry-After", str(rejection.retry_after))] if rejection.retry_after else []
        self._respond(
            transaction,
            make_response(
                request, rejection.status, rejection.reason, to_tag=self.new_tag(), headers=headers
            ),
        )
        outcome = f"{rejection.status} {rejection.reason}"
        if rejection.status != 404:
            # A call to a number of this trunk that could not be taken: the customer sees it.
            ref = uuid.uuid4().hex
            numbers = dialled_numbers(request)
            self._started(ref, request, trunk, did or (numbers[0] if numbers else ""))
            self.engine.sink.emit(
                ev.CallEnded(
                    call_ref=ref,
                    tenant_id=trunk.tenant_id,
                    trunk_id=trunk.id,
                    outcome="rejected",
                    sip_status=rejection.status,
                    reason=rejection.reason,
                    dtmf="",
                    understanding=None,
                    hangup_reason="",
                    at=time.time(),
                )
            )
        self.engine.report_trace("call", request, outcome, trunk_id=trunk.id)

    def _unknown_did(self, request: Request, peer: Peer, trunk: TrunkConfig) -> None:
        """Tells the trunk's health which number its PBX sends (at most once a minute per number)."""
        numbers = dialled_numbers(request)
        number = numbers[0] if numbers else str(getattr(request.uri, "user", "") or "")[:32]
        now = time.time()
        key = (trunk.id, number)
        if now - self._unknown_dids.get(key, 0.0) < UNKNOWN_DID_REPORT_INTERVAL:
            return
        if len(self._unknown_dids) >= 10_000:
            self._unknown_dids.clear()  # bounded: a scanner cycling numbers costs no memory
        self._unknown_dids[key] = now
        self.engine.sink.emit(
            ev.CallForUnknownDid(trunk_id=trunk.id, number=number, source=f"{peer.ip}:{peer.port}", at=now)
        )

    def _started(self, ref: str, request: Request, trunk: TrunkConfig, did: str) -> None:
        caller, caller_name, _ = caller_identity(request)
        self.engine.sink.emit(
            ev.CallStarted(
                call_ref=ref,
                tenant_id=trunk.tenant_id,
                trunk_id=trunk.id,
                sip_call_id=request.call_id[:255],
                did=did,
                caller=caller[:64],
                caller_name=caller_name[:100],
                agent_id=trunk.agent.id if trunk.agent else None,
                at=time.time(),
            )
        )

    # --- bookkeeping -----------------------------------------------------------------------------

    def register_dialog(self, dialog: Dialog, call: Call) -> None:
        self.dialogs.add(dialog)
        self._by_dialog[dialog.id] = call

    def answered(self, call: Call) -> None:
        self._ringing.pop(call.transaction, None)
        self.stats["answered"] += 1
        for observer in self.on_answered:
            observer(call)

    def forget(self, call: Call) -> None:
        if self.calls.pop(call.ref, None) is None:
            return
        self._ringing.pop(call.transaction, None)
        self.trunk_calls[call.trunk.id] -= 1
        self.tenant_calls[call.trunk.tenant_id] -= 1
        for dialog in (call.dialog, call.bridge.dialog if call.bridge else None):
            if dialog is not None:
                self.dialogs.remove(dialog)
                self._by_dialog.pop(dialog.id, None)
        # In-dialog requests that cross our BYE (a late NOTIFY) are answered 481 from now on.

    async def stop(self, timeout: float = 5.0) -> None:
        """Engine shutdown: BYE every call, and let each report itself."""
        calls = list(self.calls.values())
        for call in calls:
            if call.state is CallState.RINGING:
                call.reject(503, "Service Unavailable", retry_after=5)
        hangups = [c.hangup(outcome="answered", reason="engine_stopped") for c in calls]
        if hangups:
            await asyncio.wait_for(asyncio.gather(*hangups, return_exceptions=True), timeout)
        lives = [c.life for c in calls if c.life is not None]
        if lives:
            await asyncio.wait(lives, timeout=timeout)
        leftovers = [t for t in (*self._tasks, *lives) if not t.done()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        if self.external is not None:
            await self.external.stop()

    @property
    def active(self) -> int:
        return sum(1 for c in self.calls.values() if c.state is CallState.ANSWERED)

    def _respond(self, transaction: ServerTransaction, response) -> None:
        self.engine.respond(transaction, response)


def _allow() -> str:
    from telephony.registrar import ALLOW

    return ALLOW
