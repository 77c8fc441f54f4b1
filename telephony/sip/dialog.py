"""Dialogs (RFC 3261 §12–§15) and the Replaces header that names one (RFC 3891).

A `Dialog` is the state two user agents share for a call: its id (Call-ID and both tags),
the addresses, the remote target and route set requests must follow, and both CSeq counters.
It is pure state: built from the INVITE and the response that created it, told of each
in-dialog request and response, and asked to build the requests we send. Timers and
retransmissions belong to the transaction layer.

UAS side (an INVITE came in, we answer it)::

    ok = make_response(invite, 200, to_tag=new_tag(), headers=[("Contact", our_contact)], body=sdp)
    dialogs.add(Dialog.for_uas(invite, ok))

In-dialog requests from the peer (RFC 3261 §12.2.2)::

    try:
        dialog = dialogs.match_request(request)      # NoSuchDialog: 481
        dialog.receive_request(request)              # OutOfOrderRequest: 500
    except PeerError as error:
        respond(make_response(request, error.status, error.reason))

Our requests: ``bye = dialog.create_request("BYE", via=make_via("UDP", host, port))``.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from telephony.sip.errors import ParseError, PeerError
from telephony.sip.headers import Headers, NameAddr, Via, parse_params
from telephony.sip.message import Request, Response
from telephony.sip.uri import EMPTY_PARAMS, SipUri, Uri

MAX_FORWARDS = "70"

# Requests that may change the remote target (§12.2, RFC 3311, RFC 6665) carry our Contact.
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class NoSuchDialog(PeerError):
    """An in-dialog request that matches no dialog (§12.2.2)."""

    status = 481
    reason = "Call/Transaction Does Not Exist"


class OutOfOrderRequest(PeerError):
    """An in-dialog request whose CSeq is not above the last one (§12.2.2 prescribes 500)."""

    status = 500
    reason = "Server Internal Error"


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID plus our tag and theirs: the same dialog looks mirrored from the other side."""

    call_id: str
    local_tag: str
    remote_tag: str


def new_tag() -> str:
    """A From/To tag: globally unique and cryptographically random (§19.3)."""
    return secrets.token_hex(6)


class Dialog:
    """One dialog's state (§12.1, §12.2). Build with `for_uas` / `for_uac`."""

    __slots__ = (
        "id",
        "is_uac",
        "state",
        "method",
        "local",
        "remote",
        "remote_target",
        "route_set",
        "local_seq",
        "remote_seq",
        "local_contact",
        "secure",
    )

    def __init__(
        self,
        *,
        id: DialogId,
        is_uac: bool,
        state: DialogState,
        local: NameAddr,
        remote: NameAddr,
        remote_target: Uri,
        route_set: tuple[NameAddr, ...],
        local_seq: int,
        remote_seq: int | None,
        local_contact: NameAddr | None,
        secure: bool = False,
        method: str = "INVITE",
    ) -> None:
        self.id = id
        self.is_uac = is_uac
        self.state = state
        self.method = method  # the request that created the dialog (RFC 3891 wants INVITE)
        self.local = local  # our From in requests we send, with our tag
        self.remote = remote  # their address, with their tag
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq  # the CSeq of the last request we sent
        self.remote_seq = remote_seq  # None until the peer sends a request in the dialog
        self.local_contact = local_contact
        self.secure = secure

    def __repr__(self) -> str:
        return f"<Dialog {self.state.value} {self.id.call_id} {self.id.local_tag}/{self.id.remote_tag}>"

    @classmethod
    def for_uas(cls, request: Request, response: Response, *, local_seq: int = 0) -> Dialog:
        """The dialog our 2xx (or 101–199 with a To tag) to `request` creates (§12.1.1)."""
        local_tag = response.to.tag
        if local_tag is None or not 100 < response.status < 300:
            raise ValueError("only a 101-299 response with a To tag creates a dialog")
        if not request.contacts:
            raise PeerError(f"{request.method} without Contact cannot create a dialog")
        return cls(
            id=DialogId(request.call_id, local_tag, request.from_.tag or ""),
            is_uac=False,
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            local=response.to,
            remote=request.from_,
            remote_target=request.contacts[0].uri,
            route_set=request.record_routes,
            local_seq=local_seq,
            remote_seq=request.cseq.number,
            local_contact=response.contacts[0] if response.contacts else None,
            secure=_is_sips(request.uri),
            method=request.method,
        )

    @classmethod
    def for_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a 2xx (or 101–199 with a To tag) to our `request` creates (§12.1.2)."""
        remote_tag, local_tag = response.to.tag, request.from_.tag
        if remote_tag is None or local_tag is None or not 100 < response.status < 300:
            raise PeerError("only a 101-299 response with a To tag creates a dialog")
        return cls(
            id=DialogId(request.call_id, local_tag, remote_tag),
            is_uac=True,
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            local=request.from_,
            remote=response.to,
            # A 2xx without Contact is broken; the Request-URI is the best remaining guess.
            remote_target=response.contacts[0].uri if response.contacts else request.uri,
            route_set=tuple(reversed(response.record_routes)),
            local_seq=request.cseq.number,
            remote_seq=None,
            local_contact=request.contacts[0] if request.contacts else None,
            secure=_is_sips(request.uri),
            method=request.method,
        )

    @property
    def early(self) -> bool:
        return self.state is DialogState.EARLY

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def confirm(self) -> None:
        """UAS: our 2xx went out on an early dialog (a UAC is confirmed by `receive_response`)."""
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    # --- what the peer sends ---------------------------------------------------------------------

    def receive_request(self, request: Request) -> None:
        """Account for an in-dialog request from the peer, or raise `OutOfOrderRequest` (500).

        ACK and CANCEL reuse the CSeq of the INVITE they belong to and are not counted. A BYE
        terminates the dialog (the caller still answers it 200).
        """
        method = request.method
        if method in ("ACK", "CANCEL"):
            return
        number = request.cseq.number
        if self.remote_seq is not None and number <= self.remote_seq:
            raise OutOfOrderRequest(f"CSeq {number} {method} is not above {self.remote_seq}")
        self.remote_seq = number
        if method in TARGET_REFRESH_METHODS and request.contacts:
            self.remote_target = request.contacts[0].uri
        if method == "BYE":
            self.state = DialogState.TERMINATED

    def receive_response(self, response: Response) -> None:
        """UAC: a response to one of our in-dialog requests, or a later response to the INVITE.

        A 2xx confirms an early dialog, and then the route set is recomputed from it
        (§13.2.2.4); a 2xx to a target refresh (re-INVITE, UPDATE) updates the remote target.
        """
        if not 200 <= response.status < 300:
            return
        if response.cseq.method in ("INVITE", "UPDATE") and response.contacts:
            self.remote_target = response.contacts[0].uri
        if self.state is DialogState.EARLY and response.cseq.method == "INVITE":
            self.state = DialogState.CONFIRMED
            self.route_set = tuple(reversed(response.record_routes))

    # --- what we send ------------------------------------------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        headers: Iterable[tuple[str, object]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        via: Via | str | None = None,
    ) -> Request:
        """An in-dialog request (§12.2.1.1) with the next local CSeq.

        `via` is our Via with a fresh branch (`telephony.sip.transaction.make_via`); without it
        the request has no Via and the I/O layer must add one (`with_via`) before sending.
        `headers` are appended as given (P-Asserted-Identity, Refer-To, Event…).
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} reuses the INVITE's CSeq: use create_ack / make_cancel")
        self.local_seq += 1
        return self._request(method, self.local_seq, headers, body, content_type, via)

    def create_ack(
        self,
        invite_cseq: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        via: Via | str | None = None,
    ) -> Request:
        """The ACK for a 2xx to our INVITE with CSeq `invite_cseq` (§13.2.2.4): a new branch,
        the dialog's routing, and the INVITE's CSeq number."""
        return self._request("ACK", invite_cseq, (), body, content_type, via)

    def _request(
        self,
        method: str,
        number: int,
        headers: Iterable[tuple[str, object]],
        body: bytes,
        content_type: str | None,
        via: Via | str | None,
    ) -> Request:
        uri, routes = self._target_and_routes()
        fields: list[tuple[str, object]] = [] if via is None else [("Via", via)]
        fields += [
            ("Max-Forwards", MAX_FORWARDS),
            ("From", self.local),
            ("To", self.remote),
            ("Call-ID", self.id.call_id),
            ("CSeq", f"{number} {method}"),
        ]
        fields += [("Route", route) for route in routes]
        if method in TARGET_REFRESH_METHODS and self.local_contact is not None:
            fields.append(("Contact", self.local_contact))
        fields += headers
        if body and content_type is not None:
            fields.append(("Content-Type", content_type))
        return Request(method, uri, Headers(fields), body)

    def _target_and_routes(self) -> tuple[Uri, tuple[NameAddr, ...]]:
        """Request-URI and Route headers (§12.2.1.1): loose routing keeps the remote target as
        Request-URI; a strict router's URI becomes the Request-URI and the target goes last."""
        route_set = self.route_set
        if not route_set:
            return self.remote_target, ()
        first = route_set[0].uri
        if not isinstance(first, SipUri) or first.loose_route:
            return self.remote_target, route_set
        # Headers and the method parameter are not allowed in a Request-URI (§19.1.1 table 1).
        request_uri = replace(first, params=first.params.without("method"), headers=())
        return request_uri, (*route_set[1:], NameAddr(self.remote_target))


def _is_sips(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.is_secure


# --- Replaces (RFC 3891) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replaces:
    """``Replaces: call-id;to-tag=…;from-tag=…[;early-only]``.

    The tags are seen from the UA that *receives* it: `to_tag` is its local tag and `from_tag`
    its remote tag (§3), which is why `naming` swaps ours.
    """

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def __str__(self) -> str:
        flag = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{flag}"

    @classmethod
    def naming(cls, dialog: Dialog, *, early_only: bool = False) -> Replaces:
        """What the peer of `dialog` will recognise as that dialog (attended transfer)."""
        return cls(dialog.id.call_id, dialog.id.remote_tag, dialog.id.local_tag, early_only)

    @property
    def dialog_id(self) -> DialogId:
        """The id of the named dialog in the receiving UA's table."""
        return DialogId(self.call_id, self.to_tag, self.from_tag)


def parse_replaces(text: str) -> Replaces:
    """Parse a Replaces header value (RFC 3891 §6.1); `ParseError` (400) when malformed."""
    call_id, semicolon, _ = text.strip(" \t").partition(";")
    call_id = call_id.strip(" \t")
    if not call_id or " " in call_id or "\t" in call_id:
        raise ParseError(f"malformed Replaces: {text[:80]!r}")
    params = parse_params(text, text.index(";")) if semicolon else EMPTY_PARAMS
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not to_tag or not from_tag:
        raise ParseError("Replaces needs to-tag and from-tag")
    return Replaces(call_id, to_tag, from_tag, "early-only" in params)


# --- the table -----------------------------------------------------------------------------


class DialogTable:
    """The engine's dialogs by id: O(1) lookup for in-dialog requests, responses, Replaces."""

    __slots__ = ("_dialogs",)

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(self._dialogs.values())

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._dialogs

    def add(self, dialog: Dialog) -> None:
        if dialog.id in self._dialogs:
            raise ValueError(f"dialog {dialog.id} already exists")
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        if self._dialogs.get(dialog.id) is dialog:
            del self._dialogs[dialog.id]

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def match_request(self, request: Request) -> Dialog:
        """The dialog of an in-dialog request (To tag is ours), or `NoSuchDialog` (481)."""
        local_tag = request.to.tag
        dialog = None if local_tag is None else self._dialogs.get(_incoming_id(request, local_tag))
        if dialog is None:
            raise NoSuchDialog(f"no dialog for Call-ID {request.call_id}")
        return dialog

    def match_response(self, response: Response) -> Dialog | None:
        """The dialog a response to one of our requests belongs to (From tag is ours)."""
        local_tag, remote_tag = response.from_.tag, response.to.tag
        if local_tag is None or remote_tag is None:
            return None
        return self._dialogs.get(DialogId(response.call_id, local_tag, remote_tag))

    def find_replaced(self, replaces: Replaces) -> Dialog | None:
        return self._dialogs.get(replaces.dialog_id)

    def resolve_replaces(self, request: Request) -> Dialog | None:
        """The dialog an INVITE's Replaces header names, per RFC 3891 §3; None without one.

        Raises `PeerError` with the status the RFC prescribes: 400 for several Replaces or
        one on another method, 481 when nothing (or an early dialog we did not start, or a
        non-INVITE dialog) matches, 486 for early-only on a confirmed dialog, 603 for a
        dialog already over.
        """
        values = request.headers.get_all("Replaces")
        if not values:
            return None
        if len(values) > 1 or request.method != "INVITE":
            raise PeerError("Replaces is allowed once, in an INVITE")
        replaces = parse_replaces(values[0])
        dialog = self.find_replaced(replaces)
        if dialog is None or dialog.method != "INVITE" or (dialog.early and not dialog.is_uac):
            raise NoSuchDialog(f"Replaces names no dialog we can replace: {replaces}")
        if dialog.terminated:
            raise PeerError("the replaced dialog is over", status=603, reason="Decline")
        if replaces.early_only and dialog.state is DialogState.CONFIRMED:
            raise PeerError("early-only, but the dialog is confirmed", status=486, reason="Busy Here")
        return dialog


def _incoming_id(request: Request, local_tag: str) -> DialogId:
    return DialogId(request.call_id, local_tag, request.from_.tag or "")
