"""The SIP core's only exceptions.

Every failure is typed by whose fault it is, and carries the status code a server
should answer with, so the I/O layer never has to guess (DESIGN.md, convention 8).
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error the SIP core raises on purpose."""

    status: int = 500
    reason: str = "Server Internal Error"

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        if reason is not None:
            self.reason = reason


class PeerError(SipError):
    """The peer sent something we cannot accept: answer with `status` (or drop a response)."""

    status = 400
    reason = "Bad Request"


class ParseError(PeerError):
    """The bytes are not a well-formed SIP message."""


class LocalError(SipError):
    """Our side failed (a bug or a resource limit): answer 500/503, never blame the peer."""


class NotAcceptableHere(PeerError):
    """The peer's session description offers nothing we can use (RFC 3261 §21.4.26)."""

    status = 488
    reason = "Not Acceptable Here"
