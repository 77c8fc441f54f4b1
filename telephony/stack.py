"""Drives the pure transaction layer on asyncio: carries its actions out, fires its timers.

The engine hands every parsed message to `SipStack.receive`; the stack calls the engine back
only for what the transaction user must decide (a new request, an ACK for a 2xx, a CANCEL),
and completes the futures of requests the engine sends (`request`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from telephony.sip.message import Request, Response
from telephony.sip.transaction import (
    AckReceived,
    Action,
    CancelReceived,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerTransaction,
    StrayResponse,
    Terminated,
    Timeout,
    TransportError,
)
from telephony.sip.transaction_layer import TransactionLayer
from telephony.transport import Peer

log = logging.getLogger(__name__)


@dataclass
class TransactionUser:
    """What the engine does with what the transaction layer passes up."""

    on_request: Callable[[Request, Peer, ServerTransaction], None]
    on_ack: Callable[[Request, Peer], None]
    on_cancel: Callable[[Request, Peer, ServerTransaction, ServerTransaction | None], None]


class SipStack:
    def __init__(
        self,
        send: Callable[[bytes, Peer], bool],
        user: TransactionUser,
        layer: TransactionLayer | None = None,
    ) -> None:
        self.layer = layer or TransactionLayer()
        self._send = send
        self.user = user
        self._pending: dict[ClientTransaction, asyncio.Future] = {}
        self._provisional: dict[ClientTransaction, Callable[[Response], None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.stray_responses = 0

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    # --- in ------------------------------------------------------------------------------------

    def receive(self, message: Request | Response, peer: Peer) -> None:
        self._run(self.layer.receive(message, peer, self.now(), reliable=peer.reliable))

    def respond(self, transaction: ServerTransaction, response: Response) -> None:
        self._run(self.layer.respond(transaction, response, self.now()))

    # --- out -----------------------------------------------------------------------------------

    def request(
        self, request: Request, peer: Peer, on_provisional: Callable[[Response], None] | None = None
    ) -> asyncio.Future:
        """Sends `request` in a client transaction; the future gets the final response, or a
        TimeoutError (Timer B/F) or ConnectionError (the flow is gone)."""
        future = asyncio.get_running_loop().create_future()
        transaction, actions = self.layer.send_request(request, peer, self.now(), reliable=peer.reliable)
        self._pending[transaction] = future
        if on_provisional is not None:
            self._provisional[transaction] = on_provisional
        self._run(actions)
        return future

    def send_stateless(self, message: Request | Response, peer: Peer) -> None:
        """An ACK for a 2xx, or anything else that lives outside a transaction."""
        self._send(message.to_bytes(), peer)

    # --- carrying out actions ------------------------------------------------------------------

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            self._carry_out(action)
        self._rearm()

    def _carry_out(self, action: Action) -> None:
        match action:
            case Send(data=data, destination=peer):
                if not self._send(data, peer):
                    log.debug("no route to %s", peer)
            case RequestReceived(request=request, source=peer, transaction=transaction):
                self.user.on_request(request, peer, transaction)
            case AckReceived(request=request, source=peer):
                self.user.on_ack(request, peer)
            case CancelReceived(request=request, source=peer, transaction=transaction, invite=invite):
                self.user.on_cancel(request, peer, transaction, invite)
            case ResponseReceived(response=response, transaction=transaction):
                self._response(transaction, response)
            case Timeout(transaction=transaction):
                self._fail(transaction, TimeoutError("no final response"))
            case TransportError(transaction=transaction):
                self._fail(transaction, ConnectionError("transport failed"))
            case Terminated(transaction=transaction):
                self._fail(transaction, ConnectionError("transaction ended without a final response"))
            case StrayResponse():
                self.stray_responses += 1

    def _response(self, transaction: ClientTransaction, response: Response) -> None:
        if response.status < 200:
            callback = self._provisional.get(transaction)
            if callback is not None:
                callback(response)
            return
        future = self._pending.pop(transaction, None)
        self._provisional.pop(transaction, None)
        if future is not None and not future.done():
            future.set_result(response)

    def _fail(self, transaction: object, error: Exception) -> None:
        future = self._pending.pop(transaction, None)  # type: ignore[arg-type]
        self._provisional.pop(transaction, None)  # type: ignore[arg-type]
        if future is not None and not future.done():
            future.set_exception(error)

    # --- timers --------------------------------------------------------------------------------

    def _rearm(self) -> None:
        deadline = self.layer.next_deadline()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return  # the armed timer fires first and re-arms
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        self._run(self.layer.handle_timeout(self.now()))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
