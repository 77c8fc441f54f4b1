"""Extension numbers keyed in on the phone (RFC 4733 digits), as a small timed state machine."""

from __future__ import annotations

from collections.abc import Collection

INTER_DIGIT_TIMEOUT = 2.0
TERMINATOR = "#"
CLEAR = "*"


class DigitCollector:
    """Collects digits until one of: `#`; `INTER_DIGIT_TIMEOUT` without a key; as many digits as
    the longest extension; or digits that no extension starts with (so "0" on a directory of
    three-digit numbers goes to the operator at once instead of after the timeout)."""

    def __init__(self, numbers: Collection[str], *, timeout: float = INTER_DIGIT_TIMEOUT) -> None:
        dialable = [n for n in numbers if n.isdigit()]
        self.longest = max((len(n) for n in dialable), default=0)
        self._prefixes = {n[:i] for n in dialable for i in range(1, len(n))}
        self.timeout = timeout
        self.buffer = ""
        self._deadline: float | None = None

    def press(self, digit: str, now: float) -> str | None:
        """A key press; returns the number when it is complete."""
        if digit == CLEAR:
            self.buffer, self._deadline = "", None
            return None
        if digit == TERMINATOR:
            return self._complete()
        if not digit.isdigit():
            return None  # A-D: nothing to do with extensions
        self.buffer += digit
        self._deadline = now + self.timeout
        if len(self.buffer) >= max(self.longest, 1) or self.buffer not in self._prefixes:
            return self._complete()
        return None

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timeout(self, now: float) -> str | None:
        if self._deadline is not None and now >= self._deadline:
            return self._complete()
        return None

    def _complete(self) -> str | None:
        number, self.buffer, self._deadline = self.buffer, "", None
        return number or None
