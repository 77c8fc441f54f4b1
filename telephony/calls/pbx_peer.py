"""A small PBX built on our own SIP core and RtpSession, for end-to-end tests and benchmarks.

It does what a customer's PBX does towards SmartAlex: registers the trunk, sends a caller's
INVITE to a DID with RTP both ways, keys DTMF, and answers our REFER (202, then NOTIFY 100 /
180 / 200 or a failure) or our bridged INVITE. Every request we send it is kept in `received`,
so a test can assert on the REFER's headers. One UDP socket on 127.0.0.1; no retransmissions
(the loopback does not lose packets).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from telephony.media.codecs import codec_by_name
from telephony.media.endpoint import RtpSession
from telephony.sip import digest
from telephony.sip.dialog import Dialog
from telephony.sip.headers import Headers
from telephony.sip.message import Request, Response, make_response
from telephony.sip.parser import parse_message
from telephony.sip.refer import create_refer_notify
from telephony.sip.sdp import accept_answer, build_answer, build_offer, parse_sdp
from telephony.sip.transaction import make_via
from telephony.sip.uri import parse_uri

HOST = "127.0.0.1"


@dataclass
class TransferScript:
    """How the PBX answers our REFER: `refer_status` (202, or 405/501/603 to refuse REFER) and
    the sipfrag statuses of its NOTIFYs, each after `delay` seconds (none: it never reports)."""

    refer_status: int = 202
    notify: tuple[int, ...] = (100, 180, 200)
    delay: float = 0.02
    bridge_status: int = 200  # our answer to a bridged INVITE


@dataclass
class PeerCall:
    call_id: str
    invite: Request
    dialog: Dialog | None = None
    media: RtpSession | None = None
    response: Response | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    bye_from_engine: bool = False


class PbxPeer(asyncio.DatagramProtocol):
    def __init__(self, engine: tuple[str, int], *, transfer: TransferScript | None = None) -> None:
        self.engine = engine
        self.transfer = transfer or TransferScript()
        self.received: list[Request] = []
        self.calls: dict[str, PeerCall] = {}
        self.bridged: list[PeerCall] = []
        self.on_request: Callable[[Request], None] | None = None
        self._waiting: dict[tuple[str, int, str], asyncio.Future[Response]] = {}
        self._provisional: dict[tuple[str, int, str], list[Response]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = (HOST, 0)
        self.events: dict[str, asyncio.Event] = {}
        self.arrived: dict[str, float] = {}  # perf_counter() of the last request of each method

    async def start(self) -> PbxPeer:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(HOST, 0))
        self.address = self._transport.get_extra_info("sockname")[:2]
        return self

    def close(self) -> None:
        for call in [*self.calls.values(), *self.bridged]:
            if call.media is not None:
                call.media.close()
        if self._transport is not None:
            self._transport.close()

    # --- wire ------------------------------------------------------------------------------------

    def _send(self, message: Request | Response) -> None:
        assert self._transport is not None
        self._transport.sendto(message.to_bytes(), self.engine)

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        message = parse_message(data)
        if isinstance(message, Response):
            key = (message.call_id, message.cseq.number, message.cseq.method)
            if message.status < 200:
                self._provisional.setdefault(key, []).append(message)
                return
            future = self._waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(message)
            return
        self.received.append(message)
        self.arrived[message.method] = time.perf_counter()
        self._event(message.method).set()
        if self.on_request is not None:
            self.on_request(message)
        asyncio.get_running_loop().create_task(self._handle(message))

    def _event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def wait_for(self, method: str, timeout: float = 10.0) -> Request:
        await asyncio.wait_for(self._event(method).wait(), timeout)
        return next(r for r in reversed(self.received) if r.method == method)

    async def request(self, request: Request, timeout: float = 10.0) -> Response:
        key = (request.call_id, request.cseq.number, request.cseq.method)
        future = self._waiting[key] = asyncio.get_running_loop().create_future()
        self._send(request)
        return await asyncio.wait_for(future, timeout)

    def provisional(self, call: PeerCall) -> list[int]:
        key = (call.call_id, call.invite.cseq.number, "INVITE")
        return [r.status for r in self._provisional.get(key, [])]

    def _via(self):
        return make_via("UDP", *self.address)

    # --- registering -----------------------------------------------------------------------------

    async def register(
        self, username: str, password: str, realm_host: str = "sip.voice.getsmartalex.com"
    ) -> int:
        call_id, tag = uuid.uuid4().hex, secrets.token_hex(4)
        uri = f"sip:{realm_host}"
        response = None
        authorization = None
        for cseq in (1, 2):
            fields = [
                ("Via", self._via()),
                ("Max-Forwards", "70"),
                ("From", f"<sip:{username}@{realm_host}>;tag={tag}"),
                ("To", f"<sip:{username}@{realm_host}>"),
                ("Call-ID", call_id),
                ("CSeq", f"{cseq} REGISTER"),
                ("Contact", f"<sip:{username}@{self.address[0]}:{self.address[1]}>"),
                ("Expires", "600"),
                ("User-Agent", "TestPBX"),
            ]
            if authorization:
                fields.append(("Authorization", authorization))
            response = await self.request(Request("REGISTER", parse_uri(uri), Headers(fields)))
            if response.status != 401:
                return response.status
            authorization = digest.answer_challenge(
                response.headers.get_all("WWW-Authenticate"),
                method="REGISTER",
                uri=uri,
                username=username,
                password=password,
                cnonce=secrets.token_hex(8),
            )
        return response.status if response else 0

    # --- calling a DID -----------------------------------------------------------------------------

    async def call(
        self,
        did: str,
        *,
        codecs: tuple[str, ...] = ("PCMU",),
        caller: str = "+27825550123",
        asserted: bool = True,
        allow: str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO",
        credentials: tuple[str, str] | None = None,
        answer_timeout: float = 10.0,
        media_port: int | None = None,
    ) -> PeerCall:
        """INVITE the DID; returns once the final response is in (and ACKed if 2xx).
        `media_port`: offer this port and run no RtpSession (the benchmark's cheap listener)."""
        media: RtpSession | None = None
        if media_port is None:
            media = RtpSession(codec=codec_by_name(codecs[0]))
            await media.start(host=HOST, port=0)
            media_port = media.local_address[1]
        offer = build_offer(
            local_address=HOST, local_port=media_port, session_id=1, session_version=1, codecs=codecs
        )
        call_id = f"{uuid.uuid4().hex}@{HOST}"
        tag = secrets.token_hex(4)
        user = did.lstrip("+")
        response: Response | None = None
        proxy_auth: str | None = None
        for cseq in (1, 2):
            fields = [
                ("Via", self._via()),
                ("Max-Forwards", "70"),
                ("From", f'"Caller" <sip:{caller}@pbx.acme.test>;tag={tag}'),
                ("To", f"<sip:{did}@sip.voice.getsmartalex.com>"),
                ("Call-ID", call_id),
                ("CSeq", f"{cseq} INVITE"),
                ("Contact", f"<sip:pbx@{self.address[0]}:{self.address[1]}>"),
                ("Allow", allow),
                ("Content-Type", "application/sdp"),
            ]
            if asserted:
                fields.append(("P-Asserted-Identity", f"<sip:{caller}@pbx.acme.test>"))
            if proxy_auth:
                fields.append(("Proxy-Authorization", proxy_auth))
            invite = Request(
                "INVITE",
                parse_uri(f"sip:{user}@{self.engine[0]}:{self.engine[1]}"),
                Headers(fields),
                offer.to_bytes(),
            )
            call = self.calls[call_id] = PeerCall(call_id=call_id, invite=invite, media=media)
            response = await self.request(invite, answer_timeout)
            call.response = response
            if response.status >= 300:
                self._send(_ack_for_failure(invite, response))
            if response.status == 407 and credentials and proxy_auth is None:
                proxy_auth = digest.answer_challenge(
                    response.headers.get_all("Proxy-Authenticate"),
                    method="INVITE",
                    uri=str(invite.uri),
                    username=credentials[0],
                    password=credentials[1],
                    cnonce=secrets.token_hex(8),
                )
                continue
            break
        assert response is not None
        if 200 <= response.status < 300:
            call.dialog = Dialog.for_uac(invite, response)
            self._send(call.dialog.create_ack(invite.cseq.number, via=self._via()))
            audio = accept_answer(offer, parse_sdp(response.body))
            if media is not None:
                media.set_remote((audio.remote_address, audio.remote_port))
        elif media is not None:
            media.close()
            call.media = None
        return call

    async def cancel_after(self, call_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        call = self.calls[call_id]
        from telephony.sip.transaction import make_cancel

        self._send(make_cancel(call.invite))

    async def bye(self, call: PeerCall) -> Response:
        assert call.dialog is not None
        response = await self.request(call.dialog.create_request("BYE", via=self._via()))
        call.ended.set()
        if call.media is not None:
            call.media.close()
        return response

    async def reinvite(self, call: PeerCall, *, hold: bool) -> Response:
        from telephony.sip.sdp import Direction

        assert call.dialog is not None and call.media is not None
        offer = build_offer(
            local_address=HOST,
            local_port=call.media.local_address[1],
            session_id=1,
            session_version=2 if hold else 3,
            codecs=(call.media.codec.name,),
            direction=Direction.SENDONLY if hold else Direction.SENDRECV,
        )
        request = call.dialog.create_request(
            "INVITE", via=self._via(), body=offer.to_bytes(), content_type="application/sdp"
        )
        response = await self.request(request)
        if response.status == 200:
            self._send(call.dialog.create_ack(request.cseq.number, via=self._via()))
        return response

    async def info_digit(self, call: PeerCall, digit: str) -> Response:
        assert call.dialog is not None
        return await self.request(
            call.dialog.create_request(
                "INFO",
                via=self._via(),
                body=f"Signal={digit}\r\nDuration=160\r\n".encode(),
                content_type="application/dtmf-relay",
            )
        )

    # --- what the engine sends us -------------------------------------------------------------------

    async def _handle(self, request: Request) -> None:
        call = self.calls.get(request.call_id)
        match request.method:
            case "BYE":
                self._send(make_response(request, 200))
                if call is not None:
                    call.bye_from_engine = True
                    call.ended.set()
                    if call.media is not None:
                        call.media.close()
                for leg in self.bridged:
                    if leg.call_id == request.call_id and leg.media is not None:
                        leg.media.close()
            case "REFER" if call is not None:
                await self._answer_refer(call, request)
            case "INVITE" if call is None:
                await self._answer_bridge(request)
            case "ACK":
                pass
            case _:
                self._send(make_response(request, 200))

    async def _answer_refer(self, call: PeerCall, refer: Request) -> None:
        script = self.transfer
        call.dialog.receive_request(refer)
        self._send(make_response(refer, script.refer_status))
        if script.refer_status >= 300:
            return
        for status in script.notify:
            await asyncio.sleep(script.delay)
            notify = create_refer_notify(call.dialog, status, via=self._via())
            await self.request(notify)

    async def _answer_bridge(self, invite: Request) -> None:
        tag = secrets.token_hex(4)
        status = self.transfer.bridge_status
        if status >= 300:
            self._send(make_response(invite, status, to_tag=tag))
            return
        self._send(make_response(invite, 180, to_tag=tag))
        offer = parse_sdp(invite.body)
        probe = build_answer(offer, local_address=HOST, local_port=9, session_id=7, session_version=1)
        media = RtpSession(codec=codec_by_name(probe.audio.codec.name))
        await media.start(host=HOST, port=0)
        answer = build_answer(
            offer, local_address=HOST, local_port=media.local_address[1], session_id=7, session_version=1
        )
        media.set_remote((answer.audio.remote_address, answer.audio.remote_port))
        ok = make_response(
            invite,
            200,
            to_tag=tag,
            headers=[
                ("Contact", f"<sip:ext@{self.address[0]}:{self.address[1]}>"),
                ("Content-Type", "application/sdp"),
            ],
            body=answer.to_bytes(),
        )
        leg = PeerCall(call_id=invite.call_id, invite=invite, media=media, dialog=Dialog.for_uas(invite, ok))
        self.bridged.append(leg)
        self._send(ok)


def _ack_for_failure(invite: Request, response: Response) -> Request:
    from telephony.sip.transaction import make_ack_for_non_2xx

    return make_ack_for_non_2xx(invite, response)
