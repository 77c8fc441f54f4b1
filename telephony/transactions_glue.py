"""Adapter between the engine and the transaction layer (RFC 3261 §17).

Interim: answers retransmitted requests from a cache of the last response per transaction key
(branch + sent-by + method) for Timer J (32 s). Replaced by `telephony.sip.transaction` once that
layer lands; the engine only sees the four methods below.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from telephony.sip.message import Request, Response
from telephony.transport import Peer

TIMER_J = 32.0


def _key(request: Request) -> tuple:
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    return (via.params.get("branch"), via.host, via.port, method, request.call_id)


class TransactionGlue:
    def __init__(self, *, send: Callable[[bytes, Peer], bool]) -> None:
        self._send = send
        self._responses: dict[tuple, bytes | None] = {}
        self._expiry: list[tuple[float, tuple]] = []

    def receive_request(self, request: Request, peer: Peer, now: float) -> bool:
        key = _key(request)
        if key in self._responses:
            if request.method != "ACK":
                cached = self._responses[key]
                if cached is not None:
                    self._send(cached, peer)
                return False
            return False
        if request.method != "ACK":
            self._responses[key] = None
            heapq.heappush(self._expiry, (now + TIMER_J, key))
        return True

    def send_response(self, request: Request, response: Response, peer: Peer, now: float) -> None:
        data = response.to_bytes()
        self._responses[_key(request)] = data
        self._send(data, peer)

    def receive_response(self, response: Response, peer: Peer, now: float) -> None:
        return None

    def handle_timeout(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            _, key = heapq.heappop(self._expiry)
            self._responses.pop(key, None)
