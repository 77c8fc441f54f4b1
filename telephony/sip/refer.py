"""Call transfer: REFER (RFC 3515) and its NOTIFY progress reports (message/sipfrag, RFC 3420).

We transfer a caller (blind transfer to a PBX extension, in the caller's dialog)::

    refer = create_refer(dialog, "sip:101@pbx.example.com",
                         asserted_identity='"Caller" <sip:+27115550100@pbx.example.com>',
                         via=make_via("UDP", host, port))
    # … 202 Accepted, then NOTIFYs in the same dialog:
    progress, answer = answer_refer_notify(notify)   # answer: 200 OK (or the error to send)
    if progress and progress.failed: …               # 486 Busy Here, 603 Decline…

A peer transfers us (we are the transferee)::

    refer = parse_refer(request)                     # PeerError 400 when malformed
    respond(accept_refer(request))                   # 202 Accepted
    send(create_refer_notify(dialog, 100, via=…))    # then 180…, finally 200 or the failure
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from telephony.sip.dialog import Dialog, Replaces, parse_replaces
from telephony.sip.errors import ParseError, PeerError
from telephony.sip.headers import NameAddr, Via, parse_name_addr, parse_params
from telephony.sip.message import SIP_VERSION, Request, Response, make_response, reason_phrase
from telephony.sip.uri import EMPTY_PARAMS, Params, SipUri, Uri, parse_uri

SIPFRAG = "message/sipfrag;version=2.0"
REFER_SUBSCRIPTION_EXPIRES = 60  # seconds we promise to report progress for

_SIPFRAG_STATUS = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: ([^\r\n]*))?")


class BadEvent(PeerError):
    status = 489
    reason = "Bad Event"


# --- we send the REFER --------------------------------------------------------------------------


def create_refer(
    dialog: Dialog,
    refer_to: Uri | str,
    *,
    referred_by: NameAddr | str | None = None,
    asserted_identity: str | None = None,
    replaces: Replaces | None = None,
    headers: Iterable[tuple[str, object]] = (),
    via: Via | str | None = None,
) -> Request:
    """A REFER in `dialog` asking the peer to call `refer_to`.

    `referred_by` defaults to our dialog address (RFC 3892). `asserted_identity` is passed
    through as P-Asserted-Identity (RFC 3325): the caller's identity the target should show.
    `replaces` makes it an attended transfer: the peer's INVITE will replace that dialog.
    """
    target = parse_uri(refer_to) if isinstance(refer_to, str) else refer_to
    if replaces is not None:
        if not isinstance(target, SipUri):
            raise ValueError("Replaces needs a sip: or sips: Refer-To")
        # Carried as a URI header (``?Replaces=…``); SipUri escapes ';', '=' and '@' in it.
        target = replace(target, headers=(*target.headers, ("Replaces", str(replaces))))
    if referred_by is None:
        referred_by = NameAddr(dialog.local.uri, dialog.local.display_name)
    fields: list[tuple[str, object]] = [("Refer-To", f"<{target}>"), ("Referred-By", referred_by)]
    if asserted_identity is not None:
        fields.append(("P-Asserted-Identity", asserted_identity))
    fields += headers
    return dialog.create_request("REFER", headers=fields, via=via)


@dataclass(frozen=True, slots=True)
class ReferProgress:
    """What a NOTIFY for a REFER reports: the status line of the referred call, and whether
    the subscription is over (`subscription_reason` is Subscription-State's reason=)."""

    status: int
    reason: str
    terminated: bool
    subscription_reason: str | None = None
    event_id: str | None = None  # Event id=, the CSeq of the REFER it reports on

    @property
    def final(self) -> bool:
        return self.status >= 200

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300

    @property
    def failed(self) -> bool:
        return self.status >= 300


def parse_refer_notify(request: Request) -> ReferProgress:
    """Read a NOTIFY for a REFER subscription; `PeerError` (400, 415, 489) when it is not one."""
    event, event_params = _token_and_params(request.headers.get("Event"), "Event")
    if event.lower() != "refer":
        raise BadEvent(f"Event {event!r} is not refer")
    state, state_params = _token_and_params(request.headers.get("Subscription-State"), "Subscription-State")
    content_type = request.content_type
    if content_type is not None and content_type.mime_type != "message/sipfrag":
        raise PeerError(
            f"NOTIFY body is {content_type.mime_type}, not message/sipfrag",
            status=415,
            reason="Unsupported Media Type",
        )
    status, reason = parse_sipfrag_status(request.body)
    return ReferProgress(
        status=status,
        reason=reason,
        terminated=state.lower() == "terminated",
        subscription_reason=state_params.get("reason"),
        event_id=event_params.get("id"),
    )


def answer_refer_notify(request: Request) -> tuple[ReferProgress | None, Response]:
    """The progress a NOTIFY reports and our answer to it: 200 OK, or the error when the
    NOTIFY cannot be read (then the progress is None)."""
    try:
        progress = parse_refer_notify(request)
    except PeerError as error:
        return None, make_response(request, error.status, error.reason)
    return progress, make_response(request, 200)


# --- the peer sends the REFER ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferRequest:
    """An incoming REFER, read: whom to call, on whose behalf, and what to replace."""

    refer_to: NameAddr
    referred_by: NameAddr | None
    replaces: Replaces | None
    asserted_identity: str | None


def parse_refer(request: Request) -> ReferRequest:
    """Read an incoming REFER; `PeerError` (400) unless it has exactly one valid Refer-To."""
    values = request.headers.get_all("Refer-To")
    if len(values) != 1:
        raise PeerError(f"REFER needs exactly one Refer-To, got {len(values)}")
    refer_to = parse_name_addr(values[0])
    replaces = None
    if isinstance(refer_to.uri, SipUri):
        embedded = [value for name, value in refer_to.uri.headers if name.lower() == "replaces"]
        if len(embedded) > 1:
            raise PeerError("Refer-To carries Replaces more than once")
        replaces = parse_replaces(embedded[0]) if embedded else None
    referred_by = request.headers.get("Referred-By")
    return ReferRequest(
        refer_to=refer_to,
        referred_by=None if referred_by is None else parse_name_addr(referred_by),
        replaces=replaces,
        asserted_identity=request.headers.get("P-Asserted-Identity"),
    )


def accept_refer(request: Request, *, to_tag: str | None = None) -> Response:
    """202 Accepted (RFC 3515 §2.4.2); `to_tag` only for a REFER outside a dialog."""
    return make_response(request, 202, to_tag=to_tag)


def create_refer_notify(
    dialog: Dialog,
    status: int,
    reason: str | None = None,
    *,
    terminated: bool | None = None,
    event_id: int | str | None = None,
    expires: int = REFER_SUBSCRIPTION_EXPIRES,
    via: Via | str | None = None,
) -> Request:
    """A NOTIFY reporting the referred call's `status` (RFC 3515 §2.4.4).

    The subscription ends with the final status unless `terminated` says otherwise.
    `event_id` is the REFER's CSeq, needed when a dialog carries more than one REFER.
    """
    if terminated is None:
        terminated = status >= 200
    state = "terminated;reason=noresource" if terminated else f"active;expires={expires}"
    event = "refer" if event_id is None else f"refer;id={event_id}"
    return dialog.create_request(
        "NOTIFY",
        headers=[("Event", event), ("Subscription-State", state)],
        body=sipfrag(status, reason),
        content_type=SIPFRAG,
        via=via,
    )


# --- message/sipfrag -----------------------------------------------------------------------------


def sipfrag(status: int, reason: str | None = None) -> bytes:
    """A sipfrag body holding only a status line, which is all RFC 3515 requires."""
    phrase = reason_phrase(status) if reason is None else reason
    return f"{SIP_VERSION} {status} {phrase}\r\n".encode()


def parse_sipfrag_status(body: bytes) -> tuple[int, str]:
    """The status line that starts a sipfrag body; `ParseError` (400) when there is none."""
    first_line = body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace").strip()
    match = _SIPFRAG_STATUS.fullmatch(first_line)
    if match is None:
        raise ParseError(f"sipfrag does not start with a status line: {first_line[:60]!r}")
    return int(match.group(1)), (match.group(2) or "").strip()


def _token_and_params(value: str | None, name: str) -> tuple[str, Params]:
    if value is None:
        raise PeerError(f"NOTIFY without {name}")
    token, semicolon, _ = value.partition(";")
    token = token.strip(" \t")
    if not token:
        raise ParseError(f"empty {name}")
    return token, parse_params(value, value.index(";")) if semicolon else EMPTY_PARAMS
