"""Keeps the recent SIP messages of each dialog (by Call-ID) so that an interesting exchange —
a first registration, a failure, a call — can be reported as a trace for support.

Everything goes through `observe` (the transport's tap); only exchanges that someone flushes are
reported, so REGISTER refreshes cost a dict update and nothing reaches the database.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from telephony.transport import Peer

_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class WireMessage:
    at: float
    direction: str  # "in" | "out"
    peer: Peer
    data: bytes

    def as_dict(self, local: str) -> dict:
        remote = f"{self.peer.ip}:{self.peer.port}"
        src, dst = (remote, local) if self.direction == "in" else (local, remote)
        return {
            "at": self.at,
            "direction": self.direction,
            "transport": self.peer.transport,
            "src": src,
            "dst": dst,
            "text": self.data.decode("latin-1"),
        }


class TraceBuffer:
    def __init__(self, *, max_dialogs: int = 20_000, max_messages: int = 64, max_age: float = 300.0) -> None:
        self.max_dialogs = max_dialogs
        self.max_messages = max_messages
        self.max_age = max_age
        self._dialogs: OrderedDict[bytes, list[WireMessage]] = OrderedDict()

    def observe(self, direction: str, data: bytes, peer: Peer, now: float | None = None) -> None:
        match = _CALL_ID.search(data, 0, 4096)
        if match is None:
            return
        key = match.group(1)
        messages = self._dialogs.get(key)
        if messages is None:
            messages = self._dialogs[key] = []
            if len(self._dialogs) > self.max_dialogs:
                self._dialogs.popitem(last=False)
        else:
            self._dialogs.move_to_end(key)
        messages.append(WireMessage(time.time() if now is None else now, direction, peer, data))
        if len(messages) > self.max_messages:
            del messages[: len(messages) - self.max_messages]

    def take(self, call_id: str) -> list[WireMessage]:
        """The dialog's messages so far, and forget them."""
        return self._dialogs.pop(call_id.encode("latin-1", "replace"), [])

    def prune(self, now: float) -> None:
        while self._dialogs:
            key, messages = next(iter(self._dialogs.items()))
            if messages and now - messages[-1].at < self.max_age:
                break
            del self._dialogs[key]

    def __len__(self) -> int:
        return len(self._dialogs)
