"""The transaction layer: matching messages to transactions, and one timer heap for all of them.

Sans-I/O like the rest of the SIP core: the I/O layer feeds it parsed messages with their
source and the current time, and carries out the `Action`s it returns::

    layer = TransactionLayer()
    actions = layer.receive(message, source, now, reliable=is_stream)
    actions += layer.respond(tx, make_response(request, 200, to_tag=tag), now)
    tx, sent = layer.send_request(with_via(bye, make_via("UDP", host, port)), peer, now)
    ...
    deadline = layer.next_deadline()          # sleep until then (or until a packet)
    actions = layer.handle_timeout(now)       # fires everything that is due

Matching (RFC 3261 §17.2.3, §17.1.3, §9.2):

- requests whose top Via branch has the magic cookie *and* an id match by (branch, sent-by,
  method), ACK counting as INVITE; other requests (RFC 2543 peers, and RFC 4475's bare
  ``z9hG4bK`` badbranch) by Request-URI, To tag, From tag, Call-ID, CSeq number and top Via;
- a retransmitted request is answered by its transaction and never reaches the TU twice;
- an ACK for a non-2xx final is absorbed by its INVITE transaction; an ACK for a 2xx (a new
  branch) goes to the TU as `AckReceived`, found by Call-ID, From tag and CSeq number;
- a CANCEL gets its own transaction and `CancelReceived` names the INVITE transaction it hits;
- responses match client transactions by (branch, CSeq method); others are `StrayResponse`.

Every lookup is a dict access and every timer a heap push, so the cost per message does not
grow with the number of live transactions. The table is bounded: past `max_transactions`,
new requests are answered 503 statelessly, without creating state.
"""

from __future__ import annotations

import heapq
import itertools

from telephony.sip.errors import LocalError
from telephony.sip.message import Request, Response, make_response
from telephony.sip.timers import DEFAULT_TIMERS, TimerSettings
from telephony.sip.transaction import (
    AckReceived,
    Action,
    CancelReceived,
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    Send,
    ServerTransaction,
    State,
    StrayResponse,
    Transaction,
    client_key,
    make_cancel,
)

ServerKey = tuple[object, ...]

OVERLOAD_RETRY_AFTER = 5  # seconds, in the 503 answered when the table is full


class TransactionLayer:
    """All client and server transactions of one engine, and their timers."""

    def __init__(self, settings: TimerSettings = DEFAULT_TIMERS, *, max_transactions: int = 200_000) -> None:
        self.settings = settings
        self.max_transactions = max_transactions
        self._servers: dict[ServerKey, ServerTransaction] = {}
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        # INVITE server transactions in Accepted, by (Call-ID, From tag, CSeq number): the
        # ACK for a 2xx has a branch of its own, so this is how it finds its INVITE.
        self._accepted: dict[tuple[str, str | None, int], InviteServerTransaction] = {}
        # (deadline, tie-breaker, transaction). Entries are never removed early: an entry is
        # live only while its deadline equals the transaction's `_queued_at` (see _schedule).
        self._heap: list[tuple[float, int, Transaction]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._servers) + len(self._clients)

    # --- incoming ------------------------------------------------------------------------------

    def receive(
        self, message: Request | Response, source: object, now: float, *, reliable: bool = False
    ) -> list[Action]:
        """A parsed message from the network. `reliable`: it came over TCP/TLS."""
        if isinstance(message, Response):
            return self._receive_response(message, source, now)
        if message.method == "ACK":
            return self._receive_ack(message, source, now)
        return self._receive_request(message, source, now, reliable)

    def _receive_request(self, request: Request, source: object, now: float, reliable: bool) -> list[Action]:
        key = server_key(request, request.method, request.to.tag)
        existing = self._servers.get(key)
        if existing is not None:
            return self._settle(existing, existing.receive_request(request, now))
        if len(self) >= self.max_transactions:
            return [_overloaded(request, source)]
        transaction: ServerTransaction
        event: Action
        if request.method == "INVITE":
            transaction = InviteServerTransaction(
                request, key, source, reliable=reliable, settings=self.settings
            )
            event = RequestReceived(request, source, transaction)
        else:
            non_invite = NonInviteServerTransaction(
                request, key, source, reliable=reliable, settings=self.settings
            )
            transaction = non_invite
            if request.method == "CANCEL":
                event = CancelReceived(request, source, non_invite, self._invite_named_by_cancel(key))
            else:
                event = RequestReceived(request, source, transaction)
        self._servers[key] = transaction
        actions = transaction.start(now)
        actions.append(event)
        self._schedule(transaction)
        return actions

    def _invite_named_by_cancel(self, cancel_key: ServerKey) -> InviteServerTransaction | None:
        # §9.2: the INVITE whose transaction the CANCEL would match if its method were INVITE.
        invite = self._servers.get(("INVITE", *cancel_key[1:]))
        if isinstance(invite, InviteServerTransaction) and not invite.terminated:
            return invite
        return None

    def _receive_ack(self, ack: Request, source: object, now: float) -> list[Action]:
        invite = self._servers.get(server_key(ack, "INVITE", None))
        if invite is None and ack.to.tag is not None:
            # RFC 2543 keys hold the INVITE's To tag: none for a new call, ours for a re-INVITE.
            invite = self._servers.get(server_key(ack, "INVITE", ack.to.tag))
        if isinstance(invite, InviteServerTransaction) and invite.state is not State.ACCEPTED:
            return self._settle(invite, invite.receive_request(ack, now))  # ACK for a non-2xx
        if invite is None:
            invite = self._accepted.get((ack.call_id, ack.from_.tag, ack.cseq.number))
        if not isinstance(invite, InviteServerTransaction):
            return [AckReceived(ack, source, None)]
        if not invite.acknowledge_2xx():
            return []  # a retransmitted ACK: the TU already has it
        self._schedule(invite)
        return [AckReceived(ack, source, invite)]

    def _receive_response(self, response: Response, source: object, now: float) -> list[Action]:
        transaction = self._clients.get((response.top_via.branch, response.cseq.method))
        if transaction is None:
            return [StrayResponse(response, source)]
        actions = transaction.receive_response(response, now)
        if transaction.cancel_pending and transaction.state is State.PROCEEDING:
            transaction.cancel_pending = False
            actions += self._send_cancel(transaction, now)
        return self._settle(transaction, actions)

    # --- the TU's side -------------------------------------------------------------------------

    def respond(self, transaction: ServerTransaction, response: Response, now: float) -> list[Action]:
        """Send the TU's `response` in `transaction` (retransmitted by it as the RFC says)."""
        actions = transaction.respond(response, now)
        if (
            isinstance(transaction, InviteServerTransaction)
            and transaction.state is State.ACCEPTED
            and transaction.ack_key is None
        ):
            assert transaction.request is not None
            request = transaction.request
            transaction.ack_key = (request.call_id, request.from_.tag, request.cseq.number)
            self._accepted[transaction.ack_key] = transaction
        return self._settle(transaction, actions)

    def send_request(
        self, request: Request, destination: object, now: float, *, reliable: bool = False
    ) -> tuple[ClientTransaction, list[Action]]:
        """Start a client transaction for `request`, whose top Via must carry a fresh branch.

        An ACK is not a transaction: send an ACK for a 2xx with ``Send.of(ack, destination)``.
        Raises `LocalError` (503) when the table is full.
        """
        if request.method == "ACK":
            raise ValueError("an ACK for a 2xx is sent without a transaction: use Send.of")
        if client_key(request) in self._clients:
            raise ValueError(f"branch {request.top_via.branch} is already in use")
        if len(self) >= self.max_transactions:
            raise LocalError("too many transactions", status=503, reason="Service Unavailable")
        return self._start_client(request, destination, now, reliable=reliable)

    def cancel(self, invite: InviteClientTransaction, now: float) -> list[Action]:
        """CANCEL a pending INVITE (§9.1).

        Sent at once if a provisional response has arrived; otherwise when the first one does
        (a CANCEL must not overtake the INVITE). Nothing once a final response has arrived.
        """
        if invite.state is State.CALLING:
            invite.cancel_pending = True
            return []
        if invite.state is not State.PROCEEDING:
            return []
        return self._send_cancel(invite, now)

    def transport_error(self, transaction: Transaction, now: float) -> list[Action]:
        """The I/O layer failed to send for `transaction` (no route, connection refused…)."""
        return self._settle(transaction, transaction.transport_error())

    def _start_client(
        self, request: Request, destination: object, now: float, *, reliable: bool
    ) -> tuple[ClientTransaction, list[Action]]:
        kind = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        transaction = kind(request, destination, reliable=reliable, settings=self.settings)
        self._clients[transaction.key] = transaction
        actions = transaction.start(now)
        self._schedule(transaction)
        return transaction, actions

    def _send_cancel(self, invite: ClientTransaction, now: float) -> list[Action]:
        # A CANCEL travels like the INVITE it cancels: same destination, same transport.
        cancel = make_cancel(invite.request)
        if client_key(cancel) in self._clients:
            return []  # one CANCEL is already on its way
        return self._start_client(cancel, invite.destination, now, reliable=invite.reliable)[1]

    # --- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest instant `handle_timeout` has work to do; None when nothing is pending."""
        heap = self._heap
        while heap:
            deadline, _, transaction = heap[0]
            if transaction._queued_at == deadline and not transaction.terminated:
                return deadline
            heapq.heappop(heap)  # stale: the transaction ended or was re-queued earlier
        return None

    def handle_timeout(self, now: float) -> list[Action]:
        """Fire every timer due at `now`, in deadline order."""
        actions: list[Action] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, transaction = heapq.heappop(heap)
            if transaction._queued_at != deadline or transaction.terminated:
                continue
            transaction._queued_at = None
            actions += self._settle(transaction, transaction.handle_timeout(now))
        return actions

    def _schedule(self, transaction: Transaction) -> None:
        # Push only when the deadline moved earlier than the queued entry. A deadline that moved
        # later is found when the queued entry pops: the transaction does nothing and is
        # re-queued. So each retransmission costs one push, and nothing is ever searched.
        deadline = transaction.next_deadline()
        if deadline is None:
            return
        queued = transaction._queued_at
        if queued is None or deadline < queued:
            transaction._queued_at = deadline
            heapq.heappush(self._heap, (deadline, next(self._sequence), transaction))

    def _settle(self, transaction: Transaction, actions: list[Action]) -> list[Action]:
        """After `transaction` acted: forget it if it ended, else keep its timer queued."""
        if not transaction.terminated:
            self._schedule(transaction)
            return actions
        table: dict = self._clients if isinstance(transaction, ClientTransaction) else self._servers
        if table.get(transaction.key) is transaction:
            del table[transaction.key]
        ack_key = transaction.ack_key if isinstance(transaction, InviteServerTransaction) else None
        if ack_key is not None and self._accepted.get(ack_key) is transaction:
            del self._accepted[ack_key]
        return actions


def server_key(request: Request, kind: str, to_tag: str | None) -> ServerKey:
    """The key of the server transaction `request` belongs to (§17.2.3).

    `kind` is the method of the transaction sought: INVITE for an ACK, and for the INVITE a
    CANCEL names. RFC 2543 keys include `to_tag`: the request's own, except for an ACK, whose
    To tag is the one our response added (see `_receive_ack`).
    """
    via = request.top_via
    if via.has_rfc3261_branch:
        return (kind, via.branch, via.host.lower(), via.port)
    return (
        kind,
        request.uri,
        to_tag,
        request.from_.tag,
        request.call_id,
        request.cseq.number,
        via.transport,
        via.host.lower(),
        via.port,
        via.branch,
    )


def _overloaded(request: Request, source: object) -> Send:
    response = make_response(request, 503, headers=[("Retry-After", OVERLOAD_RETRY_AFTER)])
    return Send.of(response, source)
