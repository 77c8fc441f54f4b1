"""Bytes to messages: one datagram at a time, or a framed stream (RFC 3261 §7, §18.3; RFC 5626).

`parse_message(datagram)` and `StreamFramer.feed(chunk)` raise `MalformedMessage` and nothing
else; its flags say whether to answer, drop, or close the connection (see `errors.py`).

What is checked before a message is handed out, so the layers above can rely on it:

- start line: exactly ``Method SP Request-URI SP SIP/2.0`` (RFC 4475 lwsstart, trws, lwsruri
  and ltgtruri are 400); another SIP version is 505; a Request-URI carrying ``?headers`` is 400
  (escruri); a status code must be three digits, 100..699 (bigcode: dropped).
- framing: Content-Length parses as a non-negative integer and all copies agree (ncl, mcl01);
  a datagram shorter than it declares is 400 (clerr), longer is cut (dblreq). Without
  Content-Length a datagram's body is the rest of it (inv2543); on a stream it is mandatory.
- header fields: folding undone, names canonicalised (compact forms), limits applied; Via,
  From, To, Call-ID, CSeq present (Max-Forwards is optional: RFC 2543 peers omit it), each of
  From/To/Call-ID/CSeq/Max-Forwards at most once (multi01), and all of them plus Via parsed
  (so malformed ones are 400 here, and cached for later).
- CSeq method equals the request method: 400 (mismatch01), or 501 when the method is not one
  we know (mismatch02; an unknown method is answered 501 before anything else, §8.2.1).

Everything else (Contact, Require, Content-Type…) is parsed when first asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from telephony.sip.errors import MalformedMessage, ParseError
from telephony.sip.headers import (
    CANONICAL_NAMES,
    TOKEN,
    Headers,
    _key,
    parse_content_length,
    parse_cseq,
    parse_max_forwards,
    parse_name_addr,
    parse_via,
)
from telephony.sip.message import (
    KNOWN_METHODS,
    SIP_VERSION,
    Request,
    Response,
    _checked_call_id,
    _new_request,
    _new_response,
)
from telephony.sip.uri import SipUri, parse_uri

_FOLD = re.compile(r"\r\n[ \t]+")
_SIP_VERSION_LIKE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_HEADER_END = b"\r\n\r\n"
_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
_SINGLE_VALUED = ("From", "To", "Call-ID", "CSeq", "Max-Forwards")
_MANDATORY_KEYS = frozenset(name.lower() for name in _MANDATORY)  # as `Headers.index` spells them
_SINGLE_VALUED_KEYS = tuple((name, name.lower()) for name in _SINGLE_VALUED)

# Spellings seen on the wire (canonical, lower case, compact in either case) -> (canonical
# name, `Headers.index` key), so the common field name costs one dict lookup.
_EXACT_NAMES = {
    spelling: (canonical, _key(canonical))
    for lower, canonical in CANONICAL_NAMES.items()
    for spelling in (canonical, lower, lower.upper())
}

Fields = tuple[tuple[str, str], ...]
Index = dict[str, list[int]]

PONG = b"\r\n"  # the answer to a KeepAlive (RFC 5626 §4.4.1)


@dataclass(frozen=True)
class Limits:
    """Bounds on what a peer can make us buffer and parse."""

    max_message_size: int = 64 * 1024
    max_header_count: int = 100
    max_line_length: int = 8 * 1024
    # One Via per hop: more than the usual Max-Forwards of 70 means a loop or an attack.
    max_via_count: int = 70


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class KeepAlive:
    """A double-CRLF ping on a stream (RFC 5626 §3.5.1): answer with `PONG`."""


@dataclass(frozen=True)
class InvalidMessage:
    """A stream message that was framed correctly but is malformed: answer, keep the connection."""

    error: MalformedMessage


StreamItem = Request | Response | KeepAlive | InvalidMessage

_KEEPALIVE = KeepAlive()


def parse_message(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one datagram (RFC 3261 §18.3): the body is Content-Length octets, the rest ignored.

    A datagram holding only CRLFs (a NAT keep-alive) raises `MalformedMessage` with
    ``discard`` set.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    if len(data) > limits.max_message_size:
        raise MalformedMessage(
            f"datagram of {len(data)} bytes exceeds {limits.max_message_size}", status=513, discard=True
        )
    start = 0
    while data.startswith(b"\r\n", start):  # CRLFs before the start line are ignored (§7.5)
        start += 2
    if start == len(data):
        raise MalformedMessage("keep-alive datagram", discard=True)
    end = data.find(_HEADER_END, start)
    if end < 0:
        # Still read the fields, so that the 400 can be answered (RFC 4475 baddn as archived).
        head = data[start:-2] if data.endswith(b"\r\n") else data[start:]
        start_line, fields, _ = _read_head(head, limits, close_connection=False)
        raise _malformed(ParseError("no empty line ends the header section"), head, start_line, fields)
    head = data[start:end]
    start_line, fields, index = _read_head(head, limits, close_connection=False)
    length = _read_content_length(head, start_line, fields, index, close_connection=False)
    body_start = end + len(_HEADER_END)
    available = len(data) - body_start
    if length is None:
        length = available
    elif length > available:
        raise _malformed(
            ParseError(f"Content-Length {length} but only {available} body bytes"), head, start_line, fields
        )
    return _build(start_line, fields, index, data[body_start : body_start + length], limits)


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages; one instance per connection.

    `feed` accepts any chunking (one byte at a time included) and returns what it completed.
    Once it has raised (framing lost) it raises the same error again: close the connection.
    `buffered` is how many bytes wait for the rest of a message (e.g. for an idle timeout).
    """

    def __init__(
        self, *, limits: Limits = DEFAULT_LIMITS, on_bytes: Callable[[bytes], None] | None = None
    ) -> None:
        """`on_bytes` sees each framed message exactly as it arrived, valid or not (SIP traces)."""
        self._limits = limits
        self._on_bytes = on_bytes
        self._buffer = bytearray()
        self._scanned = 0  # bytes already searched for the blank line, so a resume is O(new)
        self._line_start = 0  # where the current incomplete line began
        self._pending: tuple[str, Fields, Index | None, int, int] | None = None
        self._failure: MalformedMessage | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[StreamItem]:
        if self._failure is not None:
            # Already reported (and answered): only repeat that the connection must close.
            raise MalformedMessage(
                f"stream framing was lost earlier: {self._failure}",
                status=self._failure.status,
                reason=self._failure.reason,
                discard=True,
                close_connection=True,
            )
        self._buffer += data
        items: list[StreamItem] = []
        try:
            while (item := self._next_item()) is not None:
                items.append(item)
        except MalformedMessage as error:
            error.preceding = tuple(items)
            self._failure = error
            self._buffer.clear()
            raise
        return items

    def _next_item(self) -> StreamItem | None:
        buffer = self._buffer
        if self._pending is None:
            while buffer.startswith(b"\r\n"):
                if buffer.startswith(_HEADER_END):
                    self._consume(4)
                    return _KEEPALIVE
                if len(buffer) < 4 and _HEADER_END.startswith(buffer):
                    return None  # may still become a double-CRLF ping
                self._consume(2)  # a lone CRLF: a pong, or padding before a start line
            if not self._find_head():
                return None
        assert self._pending is not None
        start_line, fields, index, body_start, length = self._pending
        if len(buffer) < body_start + length:
            return None
        body = bytes(buffer[body_start : body_start + length])
        if self._on_bytes is not None:
            self._on_bytes(bytes(buffer[: body_start + length]))
        self._pending = None
        self._consume(body_start + length)
        try:
            return _build(start_line, fields, index, body, self._limits)
        except MalformedMessage as error:
            return InvalidMessage(error)

    def _find_head(self) -> bool:
        buffer = self._buffer
        limits = self._limits
        end = buffer.find(_HEADER_END, max(0, self._scanned - 3))
        if end < 0:
            newline = buffer.rfind(b"\n", self._scanned)
            if newline >= 0:
                self._line_start = newline + 1
            self._scanned = len(buffer)
            if len(buffer) > limits.max_message_size:
                raise MalformedMessage(
                    "header section exceeds the message size limit", status=513, close_connection=True
                )
            if len(buffer) - self._line_start > limits.max_line_length:
                raise MalformedMessage("header line too long", close_connection=True)
            return False
        head = bytes(buffer[:end])
        start_line, fields, index = _read_head(head, limits, close_connection=True)
        length = _read_content_length(head, start_line, fields, index, close_connection=True)
        if length is None:
            raise _malformed(
                ParseError("Content-Length is mandatory on stream transports"),
                head,
                start_line,
                fields,
                close_connection=True,
            )
        body_start = end + len(_HEADER_END)
        if body_start + length > limits.max_message_size:
            raise _malformed(
                ParseError(f"message of {body_start + length} bytes exceeds the limit", status=513),
                head,
                start_line,
                fields,
                close_connection=True,
            )
        self._pending = (start_line, fields, index, body_start, length)
        return True

    def _consume(self, count: int) -> None:
        del self._buffer[:count]
        self._scanned = self._line_start = 0


def _is_response_head(head: bytes) -> bool:
    return head[:4].upper() == b"SIP/"


def _malformed(
    error: ParseError,
    head: bytes,
    start_line: str | None,
    fields: tuple[tuple[str, str], ...] | None,
    *,
    close_connection: bool = False,
) -> MalformedMessage:
    return MalformedMessage(
        str(error),
        status=error.status,
        reason=error.reason,
        discard=_is_response_head(head),
        close_connection=close_connection,
        headers=None if fields is None else Headers._trusted(fields),
        start_line=start_line,
    )


def _read_head(head: bytes, limits: Limits, *, close_connection: bool) -> tuple[str, Fields, Index | None]:
    """Start line, (canonical name, value) fields of a header section without its blank line,
    and their `Headers.index` when the fast split built it on the way."""
    start_line, fields, index, problem = _split_fields(head, limits)
    if problem is not None:
        # The well-formed fields go with the error so that a 400 can still be answered.
        raise _malformed(ParseError(problem), head, start_line, fields, close_connection=close_connection)
    return start_line, fields, index


def _split_fields(head: bytes, limits: Limits) -> tuple[str, Fields, Index | None, str | None]:
    """Split a header section; also returns the first problem found (malformed lines are skipped)."""
    # surrogateescape: UTF-8 reads as text, any other byte survives and serialises back as-is.
    text = head.decode("utf-8", "surrogateescape")
    if "\r\n " in text or "\r\n\t" in text:
        text = _FOLD.sub(" ", text)
    lines = text.split("\r\n")
    if _is_plain(text, lines, limits):
        plain = _plain_fields(lines)
        if plain is not None:
            return lines[0], plain[0], plain[1], None
    start_line, fields, problem = _checked_fields(lines, limits)
    return start_line, fields, None, problem


def _is_plain(text: str, lines: list[str], limits: Limits) -> bool:
    """Every CR and LF belongs to a line break and no line can be too long: the common case,
    where `_plain_fields` gives what `_checked_fields` would, without its per-line checks."""
    separators = len(lines) - 1
    return (
        separators <= limits.max_header_count
        and len(text) <= limits.max_line_length
        and text.count("\r") == separators
        and text.count("\n") == separators
    )


def _checked_fields(lines: list[str], limits: Limits) -> tuple[str, tuple[tuple[str, str], ...], str | None]:
    """The strict pass: every line checked, the first problem reported, malformed lines skipped."""
    start_line = lines[0]
    problem = None
    if len(start_line) > limits.max_line_length or "\r" in start_line or "\n" in start_line:
        problem = "malformed start line"
    if len(lines) - 1 > limits.max_header_count:
        problem = problem or f"more than {limits.max_header_count} header fields"
        del lines[limits.max_header_count + 1 :]
    fields = []
    for line in lines[1:]:
        if len(line) > limits.max_line_length:
            problem = problem or "header field too long"
            continue
        if "\r" in line or "\n" in line:
            problem = problem or "bare CR or LF in a header field"
            continue
        colon = line.find(":")
        if colon < 0:
            problem = problem or f"header field without a colon: {line[:60]!r}"
            continue
        raw_name = line[:colon].rstrip(" \t")
        name = CANONICAL_NAMES.get(raw_name.lower())
        if name is None:
            if not TOKEN.fullmatch(raw_name):
                problem = problem or f"malformed header name {raw_name[:60]!r}"
                continue
            name = raw_name
        fields.append((name, line[colon + 1 :].strip(" \t")))
    return start_line, tuple(fields), problem


def _plain_fields(lines: list[str]) -> tuple[Fields, Index] | None:
    """The fields of lines `_is_plain` accepted, and the `Headers.index` of them (built in the
    same pass, which is cheaper than a second one over the fields); None if any line is
    malformed (then the strict pass runs, to find which problem to report)."""
    fields = []
    append = fields.append
    index: Index = {}
    exact = _EXACT_NAMES
    for position, line in enumerate(lines[1:]):
        raw_name, colon, value = line.partition(":")
        if not colon:
            return None
        known = exact.get(raw_name)
        if known is None:
            raw_name = raw_name.rstrip(" \t")
            name = CANONICAL_NAMES.get(raw_name.lower())
            if name is None:
                if not TOKEN.fullmatch(raw_name):
                    return None
                name = raw_name
            key = _key(name)
        else:
            name, key = known
        append((name, value.strip(" \t")))
        positions = index.get(key)
        if positions is None:
            index[key] = [position]
        else:
            positions.append(position)
    return tuple(fields), index


def _read_content_length(
    head: bytes, start_line: str, fields: Fields, index: Index | None, *, close_connection: bool
) -> int | None:
    if index is None:
        values = [value for name, value in fields if name == "Content-Length"]
    else:
        values = [fields[position][1] for position in index.get("content-length", ())]
    if not values:
        return None
    try:
        length = parse_content_length(values[0])
        if any(parse_content_length(other) != length for other in values[1:]):
            raise ParseError("Content-Length values disagree")
    except ParseError as error:
        raise _malformed(error, head, start_line, fields, close_connection=close_connection) from None
    return length


def _build(
    start_line: str, fields: Fields, index: Index | None, body: bytes, limits: Limits
) -> Request | Response:
    headers = Headers._trusted(fields, index)
    is_response = start_line[:4].upper() == "SIP/"
    try:
        message = _response(start_line, headers, body) if is_response else _request(start_line, headers, body)
        _validate(message, limits)
    except ParseError as error:
        raise MalformedMessage(
            str(error),
            status=error.status,
            reason=error.reason,
            discard=is_response,
            headers=headers,
            start_line=start_line,
        ) from None
    return message


def _request(start_line: str, headers: Headers, body: bytes) -> Request:
    parts = start_line.split(" ")
    # The everyday line (a known method, SIP/2.0 in capitals) skips the checks it would pass.
    if len(parts) != 3 or parts[2] != SIP_VERSION or parts[0] not in KNOWN_METHODS:
        if len(parts) == 3 and parts[2].upper() != SIP_VERSION and _SIP_VERSION_LIKE.fullmatch(parts[2]):
            raise ParseError(f"{parts[2]} is not supported", status=505, reason="Version Not Supported")
        if len(parts) != 3 or not all(parts) or parts[2].upper() != SIP_VERSION:
            raise ParseError("Request-Line must be 'Method SP Request-URI SP SIP/2.0'")
        if not TOKEN.fullmatch(parts[0]):
            raise ParseError("method is not a token")
    method, uri_text, _ = parts
    if not uri_text:
        raise ParseError("Request-Line must be 'Method SP Request-URI SP SIP/2.0'")
    if uri_text.startswith("<"):
        raise ParseError("Request-URI must not be enclosed in <>")
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and uri.headers:
        raise ParseError("Request-URI must not carry headers")
    return _new_request(method, uri, headers, body)


def _response(start_line: str, headers: Headers, body: bytes) -> Response:
    version, _, rest = start_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version.upper() != SIP_VERSION:
        raise ParseError(f"unsupported version {version[:20]!r}")
    if len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
        raise ParseError(f"status code {code[:20]!r} is not 100..699")
    return _new_response(int(code), reason, headers, body)


def _validate(message: Request | Response, limits: Limits) -> None:
    headers = message.headers
    index = headers.index()
    fields = headers._fields
    if not index.keys() >= _MANDATORY_KEYS:  # a set comparison, in C
        missing = [name for name in _MANDATORY if name.lower() not in index]
        raise ParseError(f"missing {', '.join(missing)}")
    if len(index) != len(fields):  # else every name appears once: no field can be repeated
        for name, key in _SINGLE_VALUED_KEYS:
            positions = index.get(key)
            if positions is not None and len(positions) > 1:
                raise ParseError(f"{name} appears {len(positions)} times")
    # The views every layer above reads are parsed now (a ParseError here is the peer's 400)
    # and stored where their cached properties keep them (see `_parsed_once`). Each field is
    # known to be there exactly once, so this reads it straight from the index: what the
    # properties compute, in the order they were touched before, minus their lookups.
    views = message.__dict__
    cseq = views["cseq"] = parse_cseq(fields[index["cseq"][0]][1])
    via_positions = index["via"]
    top = fields[via_positions[0]][1]
    if len(via_positions) == 1 and top and "," not in top:
        vias = views["vias"] = (parse_via(top),)  # one Via value: what get_list would give
    else:
        vias = message.vias
    if len(vias) > limits.max_via_count:
        raise ParseError(f"more than {limits.max_via_count} Via values")
    views["from_"] = parse_name_addr(fields[index["from"][0]][1])
    views["to"] = parse_name_addr(fields[index["to"][0]][1])
    views["call_id"] = _checked_call_id(fields[index["call-id"][0]][1])
    positions = index.get("max-forwards")
    views["max_forwards"] = None if positions is None else parse_max_forwards(fields[positions[0]][1])
    if isinstance(message, Request) and cseq.method != message.method:
        if message.method not in KNOWN_METHODS:
            raise ParseError("unknown method", status=501, reason="Not Implemented")
        raise ParseError(f"CSeq method {cseq.method} does not match {message.method}")
