"""The SIP core's only exceptions.

Every failure is typed by whose fault it is, and carries the status code a server
should answer with, so the I/O layer never has to guess (DESIGN.md, convention 8).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telephony.sip.headers import Headers


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


class MalformedMessage(ParseError):
    """`parse_message` or `StreamFramer` rejected a message; says how the I/O layer must react.

    - ``discard``: never answer (the message was a response, or nothing identifies a request);
      just drop it. RFC 3261 §18.1.2: malformed responses are silently discarded.
    - ``close_connection``: the stream has lost framing (bad or missing Content-Length, limits
      exceeded); answer if possible, then close the connection.
    - ``headers``: the header fields that could be read (raw), so `error_response` can copy
      Via/From/To/Call-ID/CSeq into a 400/505/501; None when not even that was possible.
    - ``preceding``: on a stream, the messages completed in the same `feed` call before the
      failure; process them before reacting to the error.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        discard: bool = False,
        close_connection: bool = False,
        headers: Headers | None = None,
        start_line: str | None = None,
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.discard = discard
        self.close_connection = close_connection
        self.headers = headers
        self.start_line = start_line
        self.preceding: tuple[object, ...] = ()
