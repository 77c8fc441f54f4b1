"""The four transaction state machines of RFC 3261 §17, with RFC 6026's Accepted state.

Each machine is pure: it is fed messages, TU responses and the current time, and returns the
`Action`s that follow (bytes to send, messages for the TU, its own end). Timers are data: a
machine exposes ``next_deadline()`` and is woken through ``handle_timeout(now)``.

The engine normally drives them through `telephony.sip.transaction_layer.TransactionLayer`,
which matches messages to transactions and keeps one timer heap for all of them; the
machines can also be used alone (the tests drive them over simulated time).

Choices the RFC leaves to us:

- An INVITE server transaction sends 100 Trying only when the TU has not answered within
  `TimerSettings.trying_delay` (200 ms), or at once when the INVITE is retransmitted first.
- The INVITE server transaction also performs the UAS core's 2xx retransmission (§13.3.1.4:
  T1 doubling to T2, until the ACK, for 64*T1) during RFC 6026's Accepted state, whose Timer L
  has the same length. This keeps every SIP timer in one heap and the dialog layer timer-free.
  2xx retransmission is end to end, so it runs over reliable transports too: a UDP hop may sit
  between us and the UAC. No ACK by Timer L is reported as `Timeout` (the TU should send BYE).
- A non-INVITE server transaction whose TU never answers is dropped after 64*T1 (the client
  has given up by then). Once it has answered it keeps only the response bytes (its
  retransmissions are `Send`s without `message`): under REGISTER load tens of thousands of
  them wait out Timer J, and the parsed request and response would double their weight.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from telephony.sip.headers import BRANCH_MAGIC_COOKIE, Headers, Via
from telephony.sip.message import Request, Response, make_response
from telephony.sip.timers import DEFAULT_TIMERS, TimerSettings
from telephony.sip.uri import Params

# --- what transactions report ---------------------------------------------------------------


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class TerminationReason(enum.Enum):
    NORMAL = "normal"
    TIMEOUT = "timeout"  # B, F, H, or Timer L without the ACK for our 2xx
    TRANSPORT_ERROR = "transport-error"
    ABANDONED = "abandoned"  # the TU never answered a non-INVITE request


@dataclass(frozen=True, slots=True)
class Send:
    """Put `data` (the serialised `message`) on the wire towards `destination`.

    `destination` is whatever the I/O layer gave us (a request's source, or the destination of
    `send_request`); the SIP core never looks inside it. `message` is None only for a
    non-INVITE server transaction's retransmissions after its final response: it keeps just
    the bytes for Timer J (see the module docstring).
    """

    data: bytes
    destination: object
    message: Request | Response | None

    @classmethod
    def of(cls, message: Request | Response, destination: object) -> Send:
        """A one-off send outside any transaction, e.g. the ACK for a 2xx (§13.2.2.4)."""
        return cls(message.to_bytes(), destination, message)


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU; answer it with ``layer.respond(transaction, response, now)``."""

    request: Request
    source: object
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for a 2xx (its own transaction, §17.1.1.3): it belongs to the dialog.

    `invite` is the INVITE server transaction whose 2xx it acknowledges, when still known
    (within 64*T1); that transaction then stops retransmitting the 2xx. Retransmitted ACKs
    for the same 2xx are absorbed; ACKs nobody recognises come with `invite` None.
    """

    request: Request
    source: object
    invite: InviteServerTransaction | None


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL, in its own server transaction, and the INVITE transaction it names (§9.2).

    The TU answers `transaction` with 200 (481 when `invite` is None) and, if the INVITE is
    still in Proceeding, answers `invite` with 487 Request Terminated.
    """

    request: Request
    source: object
    transaction: NonInviteServerTransaction
    invite: InviteServerTransaction | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    response: Response
    transaction: ClientTransaction


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response matching no client transaction (§17.1.3): dropped, reported for tracing."""

    response: Response
    source: object


@dataclass(frozen=True, slots=True)
class Timeout:
    """The transaction failed for want of an answer: a 408 for client transactions (B, F, and
    C for an INVITE left in Proceeding); no ACK for an INVITE server transaction (H, or L
    after a 2xx: the TU should then send BYE, §13.3.1.4)."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransportError:
    """The I/O layer could not deliver a message of this transaction (§17.1.4, §17.2.4)."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction is over (reported exactly once); the layer has forgotten it."""

    transaction: Transaction
    reason: TerminationReason


Action = (
    Send
    | RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | StrayResponse
    | Timeout
    | TransportError
    | Terminated
)


# --- the machines ------------------------------------------------------------------------------


class Transaction:
    """What the four machines share: identity, transport, state and the two timer slots."""

    __slots__ = (
        "key",
        "method",
        "destination",
        "reliable",
        "settings",
        "state",
        "_resend_at",
        "_interval",
        "_end_at",
        "_queued_at",
    )

    def __init__(
        self, key: Hashable, method: str, destination: object, reliable: bool, settings: TimerSettings
    ) -> None:
        self.key = key
        self.method = method
        self.destination = destination
        self.reliable = reliable
        self.settings = settings
        self.state = State.TRYING
        self._resend_at: float | None = None
        self._interval = settings.t1
        self._end_at: float | None = None
        self._queued_at: float | None = None  # owned by the layer's timer heap

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.state.value} {self.key!r}>"

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        resend, end = self._resend_at, self._end_at
        if resend is None:
            return end
        if end is None or resend < end:
            return resend
        return end

    def handle_timeout(self, now: float) -> list[Action]:
        """Fire whichever timer is due; safe to call early or twice (it then does nothing)."""
        if self._end_at is not None and now >= self._end_at:
            # When both are due (a late wake-up), a last retransmission is pointless.
            return self._end_timer(now)
        if self._resend_at is not None and now >= self._resend_at:
            return self._resend_timer(now)
        return []

    def transport_error(self) -> list[Action]:
        if self.terminated:
            return []
        return [TransportError(self), *self._terminate(TerminationReason.TRANSPORT_ERROR)]

    def _end_timer(self, now: float) -> list[Action]:
        raise NotImplementedError

    def _resend_timer(self, now: float) -> list[Action]:
        raise NotImplementedError

    def _terminate(self, reason: TerminationReason) -> list[Action]:
        self.state = State.TERMINATED
        self._resend_at = self._end_at = None
        return [Terminated(self, reason)]

    def _start_retransmissions(self, now: float) -> None:
        first = self.settings.first_retransmit(self.reliable)
        self._interval = self.settings.t1
        self._resend_at = None if first is None else now + first

    def _back_off(self, now: float, interval: float) -> None:
        """Re-arm the retransmission timer `interval` after it was due (from now if late)."""
        self._interval = interval
        due = self._resend_at if self._resend_at is not None else now
        self._resend_at = due + interval if due + interval > now else now + interval

    def _linger(self, now: float, wait: float) -> list[Action]:
        """Enter a state that only absorbs retransmissions for `wait` seconds, then ends."""
        self._resend_at = None
        if wait <= 0:
            return self._terminate(TerminationReason.NORMAL)
        self._end_at = now + wait
        return []

    def _timeout(self) -> list[Action]:
        return [Timeout(self), *self._terminate(TerminationReason.TIMEOUT)]


class ServerTransaction(Transaction):
    """Common to server transactions: the request, and the last response to re-send."""

    __slots__ = ("request", "_last")

    def __init__(
        self,
        request: Request,
        key: Hashable,
        source: object,
        *,
        reliable: bool = False,
        settings: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(key, request.method, source, reliable, settings)
        # None once a non-INVITE transaction has answered (see the module docstring).
        self.request: Request | None = request
        self._last: Send | None = None

    @property
    def source(self) -> object:
        """Where the request came from; responses go back there."""
        return self.destination

    @property
    def last_response(self) -> Response | None:
        """The last response sent, while the transaction still holds it."""
        message = None if self._last is None else self._last.message
        return message if isinstance(message, Response) else None

    def start(self, now: float) -> list[Action]:
        raise NotImplementedError

    def receive_request(self, request: Request, now: float) -> list[Action]:
        """A retransmission of our request (or, for INVITE, the ACK for a non-2xx final)."""
        raise NotImplementedError

    def respond(self, response: Response, now: float) -> list[Action]:
        """The TU's response; responses the state does not allow are discarded (§17.2)."""
        raise NotImplementedError

    def _send(self, response: Response) -> list[Action]:
        self._last = Send(response.to_bytes(), self.destination, response)
        return [self._last]

    def _resend_last(self) -> list[Action]:
        return [] if self._last is None else [self._last]


class InviteServerTransaction(ServerTransaction):
    """§17.2.1, Figure 7, with RFC 6026's Accepted state (see the module docstring)."""

    __slots__ = ("acknowledged", "ack_key")

    def __init__(
        self,
        request: Request,
        key: Hashable,
        source: object,
        *,
        reliable: bool = False,
        settings: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(request, key, source, reliable=reliable, settings=settings)
        self.state = State.PROCEEDING
        self.acknowledged = False  # the ACK for our 2xx arrived
        # The layer's index entry (Call-ID, From tag, CSeq number) while Accepted.
        self.ack_key: tuple[str, str | None, int] | None = None

    def start(self, now: float) -> list[Action]:
        if self.settings.trying_delay <= 0:
            return self._send_trying()
        self._resend_at = now + self.settings.trying_delay
        return []

    def receive_request(self, request: Request, now: float) -> list[Action]:
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                return self._linger(now, self.settings.wait_i_k(self.reliable))
            if self.state is State.ACCEPTED:
                self.acknowledge_2xx()
            return []
        if self.state is State.PROCEEDING:
            # The client is waiting: quench its retransmissions even before the 200 ms.
            return self._resend_last() if self._last is not None else self._send_trying()
        if self.state is State.COMPLETED:
            return self._resend_last()
        return []  # Accepted: our 2xx retransmissions answer it; Confirmed: nothing to say

    def respond(self, response: Response, now: float) -> list[Action]:
        status = response.status
        if self.state is State.ACCEPTED:
            return self._send(response) if 200 <= status < 300 else []
        if self.state is not State.PROCEEDING:
            return []
        if status < 200:
            self._resend_at = None  # no 100 Trying needed any more
            return self._send(response)
        actions = self._send(response)
        self._end_at = now + self.settings.transaction_timeout  # Timer H, or L
        if status < 300:
            self.state = State.ACCEPTED
            self._interval = self.settings.t1
            self._resend_at = now + self.settings.t1
        else:
            self.state = State.COMPLETED
            self._start_retransmissions(now)  # Timer G
        return actions

    def acknowledge_2xx(self) -> bool:
        """The ACK for our 2xx arrived: stop retransmitting it. False if it had already."""
        if self.acknowledged:
            return False
        self.acknowledged = True
        self._resend_at = None
        return True

    def _send_trying(self) -> list[Action]:
        self._resend_at = None
        assert self.request is not None
        return self._send(make_response(self.request, 100))

    def _resend_timer(self, now: float) -> list[Action]:
        if self.state is State.PROCEEDING:
            return self._send_trying()
        self._back_off(now, min(2 * self._interval, self.settings.t2))  # Timer G / §13.3.1.4
        return self._resend_last()

    def _end_timer(self, now: float) -> list[Action]:
        if self.state is State.COMPLETED or (self.state is State.ACCEPTED and not self.acknowledged):
            return self._timeout()
        return self._terminate(TerminationReason.NORMAL)


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2, Figure 8."""

    __slots__ = ()

    def start(self, now: float) -> list[Action]:
        self._end_at = now + self.settings.transaction_timeout  # our guard against a silent TU
        return []

    def receive_request(self, request: Request, now: float) -> list[Action]:
        return self._resend_last()  # nothing yet in Trying: the request is just absorbed

    def respond(self, response: Response, now: float) -> list[Action]:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return []
        sent = self._send(response)
        if response.status < 200:
            self.state = State.PROCEEDING
            return sent
        self.state = State.COMPLETED
        # Only bytes wait out Timer J: the parsed request and response weigh ~2 KB.
        self.request = None
        self._last = Send(sent[0].data, self.destination, None)
        return sent + self._linger(now, self.settings.wait_j(self.reliable))

    def _end_timer(self, now: float) -> list[Action]:
        if self.state is State.COMPLETED:
            return self._terminate(TerminationReason.NORMAL)  # Timer J
        return self._terminate(TerminationReason.ABANDONED)

    def _resend_timer(self, now: float) -> list[Action]:
        return []  # a non-INVITE server transaction never retransmits on its own


class ClientTransaction(Transaction):
    """Common to client transactions: the request and its serialised form."""

    __slots__ = ("request", "_request_send", "cancel_pending")

    def __init__(
        self,
        request: Request,
        destination: object,
        *,
        reliable: bool = False,
        settings: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(client_key(request), request.method, destination, reliable, settings)
        self.request = request
        self._request_send = Send(request.to_bytes(), destination, request)
        self.cancel_pending = False  # see TransactionLayer.cancel

    def start(self, now: float) -> list[Action]:
        self._start_retransmissions(now)  # Timer A / E
        self._end_at = now + self.settings.transaction_timeout  # Timer B / F
        return [self._request_send]

    def receive_response(self, response: Response, now: float) -> list[Action]:
        raise NotImplementedError


class InviteClientTransaction(ClientTransaction):
    """§17.1.1, Figure 5, with RFC 6026's Accepted state (Timer M)."""

    __slots__ = ("_ack",)

    def __init__(
        self,
        request: Request,
        destination: object,
        *,
        reliable: bool = False,
        settings: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(request, destination, reliable=reliable, settings=settings)
        self.state = State.CALLING
        self._ack: Send | None = None

    def receive_response(self, response: Response, now: float) -> list[Action]:
        status, state = response.status, self.state
        if state is State.ACCEPTED:
            # Retransmissions of the 2xx (and 2xx from other forks): the TU re-sends its ACK.
            return [ResponseReceived(response, self)] if 200 <= status < 300 else []
        if state is State.COMPLETED:
            return [self._ack] if status >= 300 and self._ack is not None else []
        if state not in (State.CALLING, State.PROCEEDING):
            return []
        if status < 200:
            # Timer B only guards Calling: once a provisional arrived the TU decides when to
            # CANCEL, and Timer C only catches a peer that never answers at all.
            self.state = State.PROCEEDING
            self._resend_at = None
            self._end_at = now + self.settings.timer_c
            return [ResponseReceived(response, self)]
        if status < 300:
            self.state = State.ACCEPTED
            self._resend_at = None
            self._end_at = now + self.settings.transaction_timeout  # Timer M
            return [ResponseReceived(response, self)]
        self.state = State.COMPLETED
        ack = make_ack_for_non_2xx(self.request, response)
        self._ack = Send(ack.to_bytes(), self.destination, ack)
        wait_d = self.settings.wait_d(self.reliable)
        return [self._ack, ResponseReceived(response, self), *self._linger(now, wait_d)]

    def _resend_timer(self, now: float) -> list[Action]:
        self._back_off(now, 2 * self._interval)  # Timer A doubles without a cap
        return [self._request_send]

    def _end_timer(self, now: float) -> list[Action]:
        if self.state in (State.CALLING, State.PROCEEDING):
            return self._timeout()  # Timer B, or C
        return self._terminate(TerminationReason.NORMAL)  # D or M


class NonInviteClientTransaction(ClientTransaction):
    """§17.1.2, Figure 6."""

    __slots__ = ()

    def receive_response(self, response: Response, now: float) -> list[Action]:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return []  # Completed: retransmitted finals are absorbed
        if response.status < 200:
            self.state = State.PROCEEDING
            return [ResponseReceived(response, self)]
        self.state = State.COMPLETED
        return [ResponseReceived(response, self), *self._linger(now, self.settings.wait_i_k(self.reliable))]

    def _resend_timer(self, now: float) -> list[Action]:
        if self.state is State.PROCEEDING:
            interval = self.settings.t2
        else:
            interval = min(2 * self._interval, self.settings.t2)
        self._back_off(now, interval)
        return [self._request_send]

    def _end_timer(self, now: float) -> list[Action]:
        if self.state is State.COMPLETED:
            return self._terminate(TerminationReason.NORMAL)  # Timer K
        return self._timeout()  # Timer F


# --- keys and requests the transaction layer builds ---------------------------------------------


def client_key(request: Request) -> tuple[str, str]:
    """§17.1.3: a response matches by the top Via branch and the CSeq method."""
    branch = request.top_via.branch
    if branch is None or not request.top_via.has_rfc3261_branch:
        raise ValueError("a client request needs a top Via with an RFC 3261 branch (see new_branch)")
    return branch, request.method


def new_branch() -> str:
    """A branch unique in space and time (§8.1.1.7), with the magic cookie."""
    return BRANCH_MAGIC_COOKIE + secrets.token_hex(8)


def make_via(transport: str, host: str, port: int | None = None, *, rport: bool = True) -> Via:
    """Our Via for a new client transaction: a fresh branch, and ``rport`` (RFC 3581) by default."""
    params: list[tuple[str, str | None]] = [("branch", new_branch())]
    if rport:
        params.append(("rport", None))
    return Via(transport.upper(), host, port, Params(params))


def with_via(request: Request, via: Via) -> Request:
    """`request` with `via` on top: how the I/O layer fills in the sent-by it knows."""
    return Request(request.method, request.uri, request.headers.with_prepended("Via", str(via)), request.body)


def make_ack_for_non_2xx(invite: Request, response: Response) -> Request:
    """§17.1.1.3: same Request-URI, Call-ID, From, CSeq number, top Via and Route as the
    INVITE; To from the response (it carries the tag)."""
    fields: list[tuple[str, object]] = [("Via", invite.headers.get_list("Via")[0])]
    fields += [
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("From")),
        ("To", response.headers.get("To")),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} ACK"),
    ]
    fields += _routes(invite)
    return Request("ACK", invite.uri, Headers(fields))


def make_cancel(invite: Request) -> Request:
    """§9.1: a CANCEL for `invite`, matching its transaction (same top Via and branch)."""
    fields: list[tuple[str, object]] = [("Via", invite.headers.get_list("Via")[0])]
    fields += [
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("From")),
        ("To", invite.headers.get("To")),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} CANCEL"),
    ]
    fields += _routes(invite)
    return Request("CANCEL", invite.uri, Headers(fields))


def _routes(request: Request) -> Iterable[tuple[str, str]]:
    return (("Route", value) for value in request.headers.get_all("Route"))
