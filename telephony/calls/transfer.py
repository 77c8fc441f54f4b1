"""Blind transfer (RFC 3515): REFER in the caller's dialog, then NOTIFY progress to the end.

    REFER  Refer-To: <sip:EXT@pbx_domain>, Referred-By, P-Asserted-Identity: the caller
      ← 202 Accepted               (405/501/603, or no REFER in the PBX's Allow: bridged fallback)
      ← NOTIFY 100 Trying / 180 Ringing (the first within `notify_timeout`, else it failed: 408)
      ← NOTIFY 200 OK              → BYE the caller: we are out of the media path
      ← NOTIFY 486 / 603 / …       → the agent hears `TransferOutcome(accepted=False, status=…)`

Bridged fallback, for PBXs that refuse REFER: INVITE sip:EXT@pbx_domain to the PBX (at the
address the call came from: never a DNS lookup here), then relay decoded audio between the two
legs until one hangs up (`Call._relay_bridge`).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from telephony import events as ev
from telephony.calls.call import BridgeLeg, Call, TransferRecord
from telephony.media.codecs import codec_by_name
from telephony.media.endpoint import RtpSession
from telephony.media.errors import LocalMediaError
from telephony.receptionist.receptionist import TransferOutcome
from telephony.sip.dialog import Dialog
from telephony.sip.errors import PeerError
from telephony.sip.headers import Headers
from telephony.sip.message import Request, Response
from telephony.sip.refer import create_refer
from telephony.sip.sdp import accept_answer, build_offer, parse_sdp
from telephony.sip.uri import parse_uri

# Answers to a REFER that mean "this PBX does not do REFER" rather than "this target failed".
REFER_REFUSED = frozenset({405, 501, 603})


async def transfer_call(call: Call, extension: str) -> TransferOutcome:
    if call.is_over or call.dialog is None:
        return TransferOutcome(accepted=False, reason="the call is over")
    record = call.transfer = TransferRecord(target=extension, requested_at=time.time())
    if _pbx_refuses_refer(call):
        return await _bridge(call, record)
    outcome = await _refer(call, record)
    if outcome is None:
        return await _bridge(call, record)
    return outcome


def _pbx_refuses_refer(call: Call) -> bool:
    try:
        allow = call.invite.allow
    except PeerError:
        return False
    return bool(allow) and "REFER" not in {m.upper() for m in allow} and call.handler.settings.bridge_fallback


def _target(call: Call, extension: str) -> str:
    return f"sip:{extension}@{call.trunk.pbx_domain}"


async def _refer(call: Call, record: TransferRecord) -> TransferOutcome | None:
    settings = call.handler.settings
    assert call.dialog is not None
    refer = create_refer(
        call.dialog, _target(call, record.target), asserted_identity=call.caller_header, via=call.via()
    )
    while not call.notifications.empty():  # progress of an earlier attempt
        call.notifications.get_nowait()
    record.sent_at = time.time()
    call.times.refer_sent_at = asyncio.get_running_loop().time()
    call.transfer_pending = True
    try:
        response = await call.send_in_dialog(refer)
    except (TimeoutError, ConnectionError):
        return _finish(call, record, accepted=False, status=408, reason="No answer to REFER")
    if response.status in REFER_REFUSED and settings.bridge_fallback:
        call.transfer_pending = False
        return None
    if response.status >= 300:
        return _finish(call, record, accepted=False, status=response.status, reason=response.reason)
    timeout = settings.notify_timeout
    while True:
        try:
            progress = await asyncio.wait_for(call.notifications.get(), timeout)
        except TimeoutError:
            return _finish(call, record, accepted=False, status=408, reason="No NOTIFY from the PBX")
        if progress is None:
            # The dialog ended under us: the PBX took the caller (or the caller hung up).
            return _finish(call, record, accepted=True, status=None, reason="dialog ended")
        timeout = settings.transfer_ring_timeout
        if progress.status in (180, 183) and record.ringing_at is None:
            record.ringing_at = time.time()
        if progress.succeeded:
            outcome = _finish(call, record, accepted=True, status=progress.status, reason=progress.reason)
            await call.hangup(outcome="transferred")
            return outcome
        if progress.failed:
            return _finish(call, record, accepted=False, status=progress.status, reason=progress.reason)
        if progress.terminated:
            return _finish(call, record, accepted=False, status=408, reason="subscription ended early")


async def _bridge(call: Call, record: TransferRecord) -> TransferOutcome:
    record.method = "bridge"
    handler = call.handler
    media = RtpSession(codec=codec_by_name(call.codec_name))
    try:
        await media.start(host=handler.media_bind_host(), allocator=handler.ports)
    except (LocalMediaError, OSError):
        return _finish(call, record, accepted=False, status=503, reason="No media port for the bridge")
    offer = build_offer(
        local_address=handler.media_address(call.peer),
        local_port=media.local_address[1],
        session_id=call.session_id + 1,
        session_version=1,
        codecs=(call.codec_name,),
    )
    invite = _bridge_invite(call, record.target, offer.to_bytes())
    record.sent_at = time.time()

    def provisional(response: Response) -> None:
        if response.status in (180, 183) and record.ringing_at is None:
            record.ringing_at = time.time()

    try:
        response = await asyncio.wait_for(
            call.engine.stack.request(invite, call.peer, on_provisional=provisional),
            handler.settings.transfer_ring_timeout,
        )
    except (TimeoutError, ConnectionError):
        media.close()
        return _finish(call, record, accepted=False, status=408, reason="The extension did not answer")
    if response.status >= 300 or call.is_over:
        media.close()
        return _finish(call, record, accepted=False, status=response.status, reason=response.reason)
    dialog = Dialog.for_uac(invite, response)
    call.engine.stack.send_stateless(dialog.create_ack(invite.cseq.number, via=call.via()), call.peer)
    try:
        audio = accept_answer(offer, parse_sdp(response.body))
        media.set_remote((audio.remote_address, audio.remote_port))
    except PeerError:
        pass  # no usable SDP: symmetric RTP still latches on the extension's first packet
    call.bridge = BridgeLeg(invite=invite, dialog=dialog, media=media, session_id=call.session_id + 1)
    handler.register_dialog(dialog, call)
    return _finish(call, record, accepted=True, status=response.status, reason=response.reason)


def _bridge_invite(call: Call, extension: str, sdp: bytes) -> Request:
    """Our INVITE for the second leg: from the caller's identity, so the extension shows who
    is calling, with P-Asserted-Identity as on a REFER."""
    host, port = call.handler.signalling_address(call.peer)
    tag = call.handler.new_tag()
    headers = Headers(
        [
            ("Via", call.via()),
            ("Max-Forwards", "70"),
            ("From", f"{call.caller_header};tag={tag}"),
            ("To", f"<{_target(call, extension)}>"),
            ("Call-ID", f"{uuid.uuid4().hex}@{host}"),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:smartalex@{host}:{port};transport={call.peer.transport}>"),
            ("P-Asserted-Identity", call.caller_header),
            ("Content-Type", "application/sdp"),
        ]
    )
    return Request("INVITE", parse_uri(_target(call, extension)), headers, sdp)


def _finish(
    call: Call, record: TransferRecord, *, accepted: bool, status: int | None, reason: str
) -> TransferOutcome:
    record.accepted, record.status, record.reason = accepted, status, reason
    call.transfer_pending = False
    call.handler.transfers[ev.transfer_outcome(accepted=accepted, status=status)] += 1
    call.emit(
        ev.CallTransferred(
            call_ref=call.ref,
            tenant_id=call.trunk.tenant_id,
            trunk_id=call.trunk.id,
            target=record.target,
            method=record.method,
            accepted=accepted,
            status=status,
            reason=reason[:200],
            requested_at=record.requested_at,
            sent_at=record.sent_at,
            ringing_at=record.ringing_at,
            at=time.time(),
        )
    )
    return TransferOutcome(accepted=accepted, status=status, reason=reason)
