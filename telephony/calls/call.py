"""One inbound call: its INVITE, dialog, media session and life from answer to the last BYE.

Life cycle::

    RINGING ── answer() ─▶ ANSWERED ── BYE (either side), transfer, time limit ─▶ ENDED
       └── CANCEL / rejection ───────────────────────────────────────────────────────▶ ENDED

After the 200 OK one task (`life`) runs the agent, then (for a bridged transfer) relays media
until a leg hangs up, and finally reports the call: `CallEnded` and its SIP trace. Everything
else — BYE, re-INVITE, NOTIFY, INFO, CANCEL — arrives through `CallHandler` and only changes
state, so the agent never blocks the signalling.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telephony import events as ev
from telephony.calls.routing import caller_identity
from telephony.config import TrunkConfig
from telephony.media.codecs import codec_by_name
from telephony.media.dtmf import DEFAULT_PAYLOAD_TYPE, DtmfDigit
from telephony.media.endpoint import RtpSession
from telephony.media.errors import LocalMediaError
from telephony.registrar import ALLOW
from telephony.sip.dialog import Dialog
from telephony.sip.errors import PeerError
from telephony.sip.message import Request, Response, make_response
from telephony.sip.refer import ReferProgress
from telephony.sip.sdp import Answer, build_answer, parse_sdp
from telephony.sip.transaction import ServerTransaction, make_via
from telephony.transport import Peer

if TYPE_CHECKING:
    from telephony.calls.handler import CallHandler

log = logging.getLogger("telephony.calls")

SUPPORTED = "replaces, norefersub, timer"


class CallState(enum.Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass
class TransferRecord:
    """The latest transfer attempt, for the call record and the benchmark."""

    target: str
    requested_at: float
    method: str = "refer"
    sent_at: float | None = None
    ringing_at: float | None = None
    status: int | None = None
    reason: str = ""
    accepted: bool | None = None


@dataclass
class BridgeLeg:
    """The second call of a bridged transfer: our INVITE to the extension through the PBX."""

    invite: Request
    dialog: Dialog
    media: RtpSession
    session_id: int
    session_version: int = 1


@dataclass
class Timeline:
    invited_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    last_digit_at: float | None = None  # loop time, for the DTMF → REFER benchmark
    refer_sent_at: float | None = None  # loop time


class Call:
    def __init__(
        self,
        handler: CallHandler,
        *,
        ref: str,
        invite: Request,
        peer: Peer,
        transaction: ServerTransaction,
        trunk: TrunkConfig,
        did: str,
    ) -> None:
        self.handler = handler
        self.engine = handler.engine
        self.ref = ref
        self.invite = invite
        self.peer = peer
        self.transaction = transaction
        self.trunk = trunk
        self.did = did
        self.caller, self.caller_name, self.caller_header = caller_identity(invite)
        self.state = CallState.RINGING
        self.local_tag = handler.new_tag()
        self.dialog: Dialog | None = None
        self.media: RtpSession | None = None
        self.codec_name = ""
        self.telephone_event_pt = DEFAULT_PAYLOAD_TYPE
        self.session_id = random.randrange(1, 2**31)
        self.session_version = 1
        self.acked = False
        self.times = Timeline()
        self.digits: asyncio.Queue[str | None] = asyncio.Queue()
        self.dtmf_log: list[str] = []
        self.notifications: asyncio.Queue[ReferProgress | None] = asyncio.Queue()
        self.transfer: TransferRecord | None = None
        self.transfer_pending = False
        self.bridge: BridgeLeg | None = None
        self.outcome = ""
        self.sip_status: int | None = None
        self.reason = ""
        self.hangup_reason = ""
        self.understanding: dict | None = None
        self.ended = asyncio.Event()
        self._byes: list[asyncio.Task] = []
        self._reported = False
        self._guard: asyncio.TimerHandle | None = None
        self.life: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"<Call {self.ref} {self.did} {self.state.value}>"

    # --- answering -----------------------------------------------------------------------------

    @property
    def is_over(self) -> bool:
        return self.state is CallState.ENDED

    async def answer(self) -> None:
        """Media first (so the SDP answer names a bound port), then 180 if we ring, then 200."""
        settings = self.handler.settings
        try:
            if not self.invite.body:
                raise PeerError("an INVITE without an SDP offer is not supported", status=488)
            offer = parse_sdp(self.invite.body)
            address = self.handler.media_address(self.peer)
            probe = self._answer_sdp(offer, address, port=9)
            codec = codec_by_name(probe.audio.codec.name)
            self.codec_name = codec.name
            self.telephone_event_pt = probe.audio.telephone_event_pt or DEFAULT_PAYLOAD_TYPE
            self.media = RtpSession(
                codec=codec,
                remote=_media_remote(probe),
                dtmf_payload_type=self.telephone_event_pt,
                on_dtmf=self._on_rtp_digit,
            )
            await self.media.start(host=self.handler.media_bind_host(), allocator=self.handler.ports)
        except PeerError as error:
            self.reject(error.status, error.reason or "Not Acceptable Here")
            return
        except (LocalMediaError, OSError):
            log.exception("no media for call %s", self.ref)
            self.reject(503, "No media port available", retry_after=5)
            return
        if settings.answer_delay > 0:
            ringing = make_response(self.invite, 180, to_tag=self.local_tag, headers=self._record_routes())
            self._respond(self.transaction, ringing)
            await asyncio.sleep(settings.answer_delay)
        if self.is_over:  # cancelled while ringing
            self.media.close()
            return
        sdp = self._answer_sdp(offer, address, port=self.media.local_address[1])
        ok = make_response(
            self.invite,
            200,
            to_tag=self.local_tag,
            headers=[
                *self._record_routes(),
                ("Contact", self.contact()),
                ("Allow", ALLOW),
                ("Supported", SUPPORTED),
                ("Content-Type", "application/sdp"),
            ],
            body=sdp.to_bytes(),
        )
        self.dialog = Dialog.for_uas(self.invite, ok)
        self.handler.register_dialog(self.dialog, self)
        self._respond(self.transaction, ok)
        self.state = CallState.ANSWERED
        self.times.answered_at = time.time()
        self.handler.answered(self)
        self.emit(ev.CallAnswered(call_ref=self.ref, **self._ids(), codec=self.codec_name, at=time.time()))
        agent = self.trunk.agent
        limit = (agent.max_call_duration if agent else 300) + settings.duration_grace
        self._guard = asyncio.get_running_loop().call_later(limit, self._time_limit)
        self.life = asyncio.get_running_loop().create_task(self._run())
        self.handler._track(self.life)

    def _answer_sdp(self, offer, address: str, *, port: int) -> Answer:
        # The codec in use stays first on a re-INVITE, so hold/unhold never switches codecs.
        preferences = (self.codec_name, *self.trunk.codecs) if self.codec_name else self.trunk.codecs
        return build_answer(
            offer,
            local_address=address,
            local_port=port,
            session_id=self.session_id,
            session_version=self.session_version,
            preferences=preferences,
        )

    def _record_routes(self) -> list[tuple[str, str]]:
        """RFC 3261 §12.1.1: a response that makes a dialog carries the INVITE's Record-Route
        values, in order, or a proxy in front (Kamailio) is left out of the caller's ACK and BYE."""
        return [("Record-Route", value) for value in self.invite.headers.get_all("Record-Route")]

    def contact(self) -> str:
        host, port = self.handler.signalling_address(self.peer)
        user = self.did.lstrip("+") or "agent"
        return f"<sip:{user}@{host}:{port};transport={self.peer.transport}>"

    def via(self):
        host, port = self.handler.signalling_address(self.peer)
        return make_via(self.peer.transport.upper(), host, port)

    # --- rejection and CANCEL ------------------------------------------------------------------

    def reject(self, status: int, reason: str, *, retry_after: int | None = None) -> None:
        headers = [("Retry-After", str(retry_after))] if retry_after else []
        self._respond(
            self.transaction,
            make_response(self.invite, status, reason, to_tag=self.local_tag, headers=headers),
        )
        self._end("rejected", sip_status=status, reason=reason)
        self.report()

    def cancel(self) -> None:
        """CANCEL before our 200 (the handler already answered the CANCEL itself)."""
        if self.state is not CallState.RINGING:
            return
        self._respond(self.transaction, make_response(self.invite, 487, to_tag=self.local_tag))
        self._end("cancelled", sip_status=487, reason="Request Terminated")
        self.report()

    # --- in-dialog requests ----------------------------------------------------------------------

    def remote_bye(self, dialog: Dialog) -> None:
        """A BYE from the caller's side or from the bridged extension: end the other leg too."""
        # During a REFER the PBX may end our dialog itself once it has taken the caller.
        transferred = self.bridge is not None or self.transfer_pending
        self._end("transferred" if transferred else "caller_hung_up")
        self._bye_all(skip=dialog)

    def reinvite(
        self, request: Request, transaction: ServerTransaction, dialog: Dialog | None = None
    ) -> None:
        """Hold, unhold or a media move, from the caller or from the bridged extension: answer
        for that leg with its own port and the codec in use; on hold our stream stops."""
        bridge = self.bridge if self.bridge is not None and dialog is self.bridge.dialog else None
        media = bridge.media if bridge is not None else self.media
        if media is None or self.is_over:
            self._respond(transaction, make_response(request, 481))
            return
        try:
            offer = parse_sdp(request.body) if request.body else None
            if offer is None:
                raise PeerError("re-INVITE without an offer", status=488)
            address = self.handler.media_address(self.peer)
            if bridge is not None:
                bridge.session_version += 1
                answer = build_answer(
                    offer,
                    local_address=address,
                    local_port=media.local_address[1],
                    session_id=bridge.session_id,
                    session_version=bridge.session_version,
                    preferences=(self.codec_name,),
                )
            else:
                self.session_version += 1
                answer = self._answer_sdp(offer, address, port=media.local_address[1])
        except PeerError as error:
            self._respond(transaction, make_response(request, error.status, error.reason))
            return
        remote = _media_remote(answer)
        if remote is not None and remote != media.remote:
            media.set_remote(remote)
        media.set_sending(answer.audio.direction.sends)
        self._respond(
            transaction,
            make_response(
                request,
                200,
                headers=[("Contact", self.contact()), ("Allow", ALLOW), ("Content-Type", "application/sdp")],
                body=answer.to_bytes(),
            ),
        )

    def info_digit(self, request: Request) -> None:
        """INFO application/dtmf-relay: 'Signal=5'."""
        for line in request.body.decode("latin-1").splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal" and value.strip():
                self._digit(value.strip()[0].upper())

    def _on_rtp_digit(self, digit: DtmfDigit) -> None:
        self._digit(digit.digit)

    def _digit(self, digit: str) -> None:
        if self.is_over:
            return
        self.dtmf_log.append(digit)
        self.times.last_digit_at = asyncio.get_running_loop().time()
        self.digits.put_nowait(digit)

    # --- requests we send --------------------------------------------------------------------------

    async def send_in_dialog(self, request: Request) -> Response:
        """Send to where the INVITE came from (the PBX's flow): right through NAT and for TCP."""
        return await self.engine.stack.request(request, self.peer)

    def _bye_all(self, *, skip: Dialog | None = None) -> None:
        for dialog in (self.dialog, self.bridge.dialog if self.bridge else None):
            if dialog is None or dialog is skip or dialog.terminated:
                continue
            bye = dialog.create_request("BYE", via=self.via())
            dialog.terminate()
            self._byes.append(asyncio.get_running_loop().create_task(self._send_bye(bye)))

    async def _send_bye(self, bye: Request) -> None:
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self.send_in_dialog(bye), self.handler.settings.bye_timeout)

    async def hangup(self, *, outcome: str = "answered", reason: str = "") -> None:
        """BYE every leg we are in, and end the call."""
        if self.is_over:
            return
        if reason:
            self.hangup_reason = reason
        self._end(outcome)
        self._bye_all()
        if self._byes:
            await asyncio.gather(*self._byes, return_exceptions=True)

    def _time_limit(self) -> None:
        # The agent says its closing line at the limit; this backstop ends a call it did not.
        if not self.is_over:
            asyncio.get_running_loop().create_task(
                self.hangup(outcome=self.outcome or "answered", reason="max_call_duration")
            )

    # --- the end -----------------------------------------------------------------------------------

    def _end(self, outcome: str, *, sip_status: int | None = None, reason: str = "") -> None:
        if self.is_over:
            return
        self.state = CallState.ENDED
        self.outcome = self.outcome or outcome
        self.sip_status = sip_status
        self.reason = reason or self.reason
        self.times.ended_at = time.time()
        if self._guard is not None:
            self._guard.cancel()
        for media in (self.media, self.bridge.media if self.bridge else None):
            if media is not None:
                _end_audio(media)
                media.close()
        self.digits.put_nowait(None)
        self.notifications.put_nowait(None)
        self.handler.forget(self)
        self.ended.set()

    async def _run(self) -> None:
        """The agent, then a bridge if the agent's transfer made one, then the report."""
        from telephony.call_control import EngineCallControl

        try:
            understanding = await self.handler.agents.run(self, EngineCallControl(self))
            if understanding is not None:
                self.understanding = understanding.as_dict()
                self.hangup_reason = understanding.hangup_reason or self.hangup_reason
        except Exception:
            log.exception("the agent failed on call %s", self.ref)
            self.hangup_reason = self.hangup_reason or "agent_failed"
        if self.bridge is not None and not self.is_over:
            await self._relay_bridge()
        if not self.is_over:
            await self.hangup(outcome="answered", reason=self.hangup_reason or "agent_finished")
        await self.ended.wait()
        if self._byes:
            await asyncio.gather(*self._byes, return_exceptions=True)
        self.report()

    async def _relay_bridge(self) -> None:
        assert self.bridge is not None and self.media is not None
        relays = [
            asyncio.create_task(_relay(self.media, self.bridge.media)),
            asyncio.create_task(_relay(self.bridge.media, self.media)),
        ]
        await self.ended.wait()
        for task in relays:
            task.cancel()

    def report(self) -> None:
        """CallEnded and the SIP trace, once."""
        if self._reported:
            return
        self._reported = True
        self.emit(
            ev.CallEnded(
                call_ref=self.ref,
                **self._ids(),
                outcome=self.outcome,
                sip_status=self.sip_status,
                reason=self.reason[:200],
                dtmf="".join(self.dtmf_log)[:64],
                understanding=self.understanding,
                hangup_reason=self.hangup_reason,
                at=self.times.ended_at or time.time(),
            )
        )
        self.engine.report_trace("call", self.invite, self.outcome, trunk_id=self.trunk.id)
        if self.bridge is not None:
            self.engine.report_trace(
                "call", self.bridge.invite, f"bridge {self.outcome}", trunk_id=self.trunk.id
            )

    # --- helpers -----------------------------------------------------------------------------------

    def _ids(self) -> dict:
        return {"tenant_id": self.trunk.tenant_id, "trunk_id": self.trunk.id}

    def emit(self, event: ev.EngineEvent) -> None:
        self.engine.sink.emit(event)

    def _respond(self, transaction: ServerTransaction, response: Response) -> None:
        self.engine.respond(transaction, response)


def _media_remote(answer: Answer) -> tuple[str, int] | None:
    """Where to send RTP before the first packet latches: only an IP literal (a host name in c=
    would need a DNS lookup on the loop; symmetric RTP finds the address anyway)."""
    audio = answer.audio
    if not audio.direction.sends or audio.remote_port == 0:
        return None
    try:
        ipaddress.ip_address(audio.remote_address)
    except ValueError:
        return None
    return (audio.remote_address, audio.remote_port)


def _end_audio(media: RtpSession) -> None:
    """Wake whoever reads the caller's audio: an empty frame means the call is over."""
    queue = media.caller_audio
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(b"")


async def _relay(source: RtpSession, sink: RtpSession) -> None:
    while True:
        frame = await source.caller_audio.get()
        if not frame:
            return
        sink.play(frame)
