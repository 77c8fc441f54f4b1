"""SIP requests and responses, and how to answer them (RFC 3261 §7, §8.2.6, §18.2; RFC 3581).

Sans-I/O: bytes in, frozen objects out, bytes out. Nothing in `telephony.sip` touches a socket
or a clock. The pieces: `parser` (bytes -> messages), this module (messages, responses),
`headers` and `uri` (typed values), `uas_checks` (an endpoint's checks before the application),
`errors` (every exception, with the status to answer).

Parse one UDP datagram::

    from telephony.sip.errors import MalformedMessage, PeerError
    from telephony.sip.message import Request, error_response, make_response, stamp_received
    from telephony.sip.parser import Limits, parse_message

    try:
        message = parse_message(datagram)      # or parse_message(datagram, limits=Limits(...))
    except MalformedMessage as error:          # the only exception it raises
        reply = error_response(error, to_tag=new_tag())   # None: drop it (a response, no Via…)
        ...
    if isinstance(message, Request):
        request = stamp_received(message, source_ip, source_port)   # Via received/rport
        rejection = check_request(request, supported_methods=..., supported_extensions=...,
                                  accepted_content_types=..., to_tag=new_tag())

Frame a TCP/TLS stream (one `StreamFramer` per connection)::

    framer = StreamFramer()
    try:
        items = framer.feed(chunk)
    except MalformedMessage as error:          # framing lost: error.close_connection is True
        items = error.preceding                #   handle what came before, answer, then close
    for item in items:
        match item:
            case KeepAlive():  send(PONG)      # RFC 5626 double-CRLF ping -> single CRLF pong
            case InvalidMessage(error=error):  send(error_response(error))  # connection stays
            case Request() | Response():       handle(item)

Build a response (§8.2.6: Via, From, To (+tag), Call-ID and CSeq copied byte-for-byte)::

    ok = make_response(request, 200, to_tag="a6c85cf", headers=[("Contact", "<sip:agent@192.0.2.4>")])
    wire = ok.to_bytes()                       # Content-Length always matches the body

Build a request: ``Request("OPTIONS", parse_uri("sip:pbx.example.com"), Headers([("Via", ...),
...]), body=b"")``; header values may be strings or typed values (`Via`, `NameAddr`, `CSeq`…),
which are serialised with ``str()``.

Typed views are properties parsed on first access and cached: `call_id`, `cseq`, `from_`,
`to`, `vias`, `top_via`, `contacts`, `has_wildcard_contact`, `max_forwards`, `expires`,
`content_type`, `accept`, `require`, `proxy_require`, `supported`, `unsupported`, `allow`,
`routes`, `record_routes`, and ``auth(name)``. `parse_message` has already validated Via,
From, To, Call-ID, CSeq and Max-Forwards; the others raise `ParseError` (a `PeerError`,
status 400) when malformed: answer ``make_response(request, error.status, error.reason)``.

Messages are immutable: derive one with ``dataclasses.replace(request, headers=...)`` and the
`Headers.with_*` methods.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from telephony.sip.errors import MalformedMessage, ParseError
from telephony.sip.headers import (
    AuthValue,
    Contact,
    CSeq,
    Headers,
    MediaType,
    NameAddr,
    Via,
    _checked,
    _new_via,
    is_token,
    parse_auth,
    parse_contacts,
    parse_cseq,
    parse_expires,
    parse_max_forwards,
    parse_media_type,
    parse_media_types,
    parse_name_addr,
    parse_tokens,
    parse_vias,
    split_list,
)
from telephony.sip.uri import Uri

SIP_VERSION = "SIP/2.0"

# Methods some RFC defines. A request with any other method is answered 501, one we know but
# do not handle 405 (RFC 3261 §8.2.1).
KNOWN_METHODS = frozenset(
    [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    ]
)

REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_GENERIC_REASONS = {1: "Provisional", 2: "Success", 3: "Redirection", 4: "Client Error", 5: "Server Error"}


def reason_phrase(status: int) -> str:
    return REASON_PHRASES.get(status) or _GENERIC_REASONS.get(status // 100, "Global Failure")


_T = TypeVar("_T")


class _parsed_once(Generic[_T]):  # lower case: it is used as a decorator, like property
    """functools.cached_property without its per-access lock (Python 3.11): the first access
    stores the value in the instance ``__dict__``, which then shadows this descriptor."""

    def __init__(self, function: Callable[[Any], _T]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> _T:
        if instance is None:
            return self  # type: ignore[return-value]
        value = self.function(instance)
        instance.__dict__[self.name] = value
        return value


class _Message:
    """Typed views shared by requests and responses; each is parsed once, then cached."""

    headers: Headers
    body: bytes

    def _single(self, name: str) -> str | None:
        values = self.headers.get_all(name)
        if len(values) > 1:
            raise ParseError(f"{name} appears {len(values)} times")
        return values[0] if values else None

    def _required(self, name: str) -> str:
        value = self._single(name)
        if value is None:
            raise ParseError(f"missing {name}")
        return value

    @_parsed_once
    def call_id(self) -> str:
        return _checked_call_id(self._required("Call-ID"))

    @_parsed_once
    def cseq(self) -> CSeq:
        return parse_cseq(self._required("CSeq"))

    @_parsed_once
    def from_(self) -> NameAddr:
        return parse_name_addr(self._required("From"))

    @_parsed_once
    def to(self) -> NameAddr:
        return parse_name_addr(self._required("To"))

    @_parsed_once
    def vias(self) -> tuple[Via, ...]:
        vias = parse_vias(self.headers.get_list("Via"))
        if not vias:
            raise ParseError("missing Via")
        return vias

    @property
    def top_via(self) -> Via:
        return self.vias[0]

    @_parsed_once
    def _contact_list(self) -> tuple[tuple[Contact, ...], bool]:
        return parse_contacts(self.headers.get_list("Contact"))

    @property
    def contacts(self) -> tuple[Contact, ...]:
        """Contact values in order; empty for ``Contact: *`` (see `has_wildcard_contact`)."""
        return self._contact_list[0]

    @property
    def has_wildcard_contact(self) -> bool:
        return self._contact_list[1]

    @_parsed_once
    def max_forwards(self) -> int | None:
        value = self._single("Max-Forwards")
        return None if value is None else parse_max_forwards(value)

    @_parsed_once
    def expires(self) -> int | None:
        value = self._single("Expires")
        return None if value is None else parse_expires(value)

    @_parsed_once
    def content_type(self) -> MediaType | None:
        value = self._single("Content-Type")
        return None if value is None else parse_media_type(value)

    @_parsed_once
    def accept(self) -> tuple[MediaType, ...] | None:
        """Accept media ranges; None when the header is absent (an empty Accept accepts nothing)."""
        if "Accept" not in self.headers:
            return None
        return parse_media_types(self.headers.get_list("Accept"))

    @property
    def content_length(self) -> int:
        """The body size: what the parser framed, and what `to_bytes` will declare."""
        return len(self.body)

    def _tokens(self, name: str) -> tuple[str, ...]:
        values = self.headers.get_list(name)
        return parse_tokens(values, name) if values else ()  # mostly absent: nothing to check

    @_parsed_once
    def require(self) -> tuple[str, ...]:
        return self._tokens("Require")

    @_parsed_once
    def proxy_require(self) -> tuple[str, ...]:
        return self._tokens("Proxy-Require")

    @_parsed_once
    def supported(self) -> tuple[str, ...]:
        return self._tokens("Supported")

    @_parsed_once
    def unsupported(self) -> tuple[str, ...]:
        return self._tokens("Unsupported")

    @_parsed_once
    def allow(self) -> tuple[str, ...]:
        return self._tokens("Allow")

    @_parsed_once
    def routes(self) -> tuple[NameAddr, ...]:
        return tuple(parse_name_addr(value) for value in self.headers.get_list("Route"))

    @_parsed_once
    def record_routes(self) -> tuple[NameAddr, ...]:
        return tuple(parse_name_addr(value) for value in self.headers.get_list("Record-Route"))

    def auth(self, name: str) -> tuple[AuthValue, ...]:
        """Authorization, Proxy-Authorization, WWW-Authenticate…: one value per field line."""
        return tuple(parse_auth(value) for value in self.headers.get_all(name))


def _checked_call_id(value: str) -> str:
    if " " in value or "\t" in value:
        raise ParseError("Call-ID contains whitespace")
    return value


@dataclass(frozen=True)
class Request(_Message):
    method: str
    uri: Uri
    headers: Headers = Headers()
    body: bytes = b""

    @property
    def start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def to_bytes(self) -> bytes:
        return _serialize(self.start_line, self.headers, self.body)


@dataclass(frozen=True)
class Response(_Message):
    status: int
    reason: str = ""
    headers: Headers = Headers()
    body: bytes = b""

    @property
    def start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    def to_bytes(self) -> bytes:
        return _serialize(self.start_line, self.headers, self.body)


# The parser and make_response build a message per datagram: these give what Request(...) and
# Response(...) give, without the frozen dataclass's object.__setattr__ call per field.
_new = object.__new__


def _new_request(method: str, uri: Uri, headers: Headers, body: bytes) -> Request:
    request = _new(Request)
    request.__dict__.update(method=method, uri=uri, headers=headers, body=body)
    return request


def _new_response(status: int, reason: str, headers: Headers, body: bytes) -> Response:
    response = _new(Response)
    response.__dict__.update(status=status, reason=reason, headers=headers, body=body)
    return response


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    # Content-Length is always rewritten from the body (in place, or appended), so a message
    # edited after parsing can never declare a stale length.
    if "\r" in start_line or "\n" in start_line:
        raise ValueError(f"start line contains CR or LF: {start_line[:80]!r}")
    # Usually no field is Content-Length (we build most messages): then one comprehension and
    # one join do. Names are canonical and values hold no CR or LF, so a Content-Length field
    # is exactly an occurrence of CRLF "Content-Length: " in the joined text.
    text = "\r\n".join([start_line, *[f"{name}: {value}" for name, value in headers]])
    if "\r\nContent-Length: " not in text:
        return f"{text}\r\nContent-Length: {len(body)}\r\n\r\n".encode("utf-8", "surrogateescape") + body
    return _serialize_field_by_field(start_line, headers, body)


def _serialize_field_by_field(start_line: str, headers: Headers, body: bytes) -> bytes:
    """The general case: the first Content-Length field rewritten in place, later ones dropped."""
    lines = [start_line]
    length_written = False
    for name, value in headers:
        if name == "Content-Length":
            if length_written:
                continue
            value = str(len(body))
            length_written = True
        lines.append(f"{name}: {value}")
    if not length_written:
        lines.append(f"Content-Length: {len(body)}")
    lines += ("", "")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, object]] = (),
    body: bytes = b"",
) -> Response:
    """A response to `request` per RFC 3261 §8.2.6.

    Via (all, in order), From, Call-ID and CSeq are copied byte-for-byte; so is To, plus
    ``;tag=to_tag`` unless the request's To already has a tag (then it must stay as it was).
    A 100 Trying also copies Timestamp (§8.2.6.1). `headers` are appended after those;
    set Content-Type there when `body` is not empty.
    """
    if not 100 <= status <= 699:
        raise ValueError(f"status {status} is not 100..699")
    if to_tag is not None and not is_token(to_tag):
        raise ValueError(f"to_tag {to_tag!r} is not a token")
    to_value = request.headers.get("To")
    if to_value is not None and to_tag is not None and request.to.tag is None:
        to_value = f"{to_value};tag={to_tag}"
    fields = _copied_fields(request.headers, to_value)
    if status == 100:
        fields += [("Timestamp", value) for value in request.headers.get_all("Timestamp")]
    if headers:
        fields += [_checked(name, value) for name, value in headers]
    return _new_response(
        status, reason_phrase(status) if reason is None else reason, Headers._trusted(tuple(fields)), body
    )


def _copied_fields(headers: Headers, to_value: str | None) -> list[tuple[str, str]]:
    """Fields of a parsed (so already validated) message: they need no second check.

    Read straight from the index: the fields are already (canonical name, value) pairs, so
    the first of each name is reused as it is, To only rebuilt when it changed.
    """
    index = headers.index()
    fields = headers._fields
    copied = [fields[position] for position in index.get("via", ())]
    positions = index.get("from")
    if positions:
        copied.append(fields[positions[0]])
    if to_value is not None:
        copied.append(("To", to_value))
    positions = index.get("call-id")
    if positions:
        copied.append(fields[positions[0]])
    positions = index.get("cseq")
    if positions:
        copied.append(fields[positions[0]])
    return copied


def error_response(
    error: MalformedMessage, *, to_tag: str | None = None, headers: Iterable[tuple[str, object]] = ()
) -> Response | None:
    """The answer to a message `parse_message`/`StreamFramer` rejected, or None to drop it.

    None when the message was a response (``error.discard``) or when no Via could be read
    (there is nowhere to send an answer). Otherwise the status hint of the error with what
    could be copied of Via/From/To/Call-ID/CSeq.
    """
    if error.discard or error.headers is None or "Via" not in error.headers:
        return None
    to_value = error.headers.get("To")
    if to_value is not None and to_tag is not None and _has_no_tag(to_value):
        to_value = f"{to_value};tag={to_tag}"
    fields = _copied_fields(error.headers, to_value)
    fields += [_checked(name, value) for name, value in headers]
    return Response(error.status, error.reason, Headers._trusted(tuple(fields)))


def _has_no_tag(to_value: str) -> bool:
    try:
        return parse_name_addr(to_value).tag is None
    except ParseError:
        return False  # a To we cannot read is copied as it is, untouched


def stamp_received(request: Request, source_ip: str, source_port: int) -> Request:
    """Record where the request really came from in its top Via (RFC 3261 §18.2.1, RFC 3581).

    ``received`` is added when the sent-by host is not the source IP, and always when the
    client asked for ``rport`` (which is then set to the source port). Returns `request`
    itself when nothing changes.
    """
    vias = request.vias
    via = vias[0]
    params = via.params
    if "rport" in params:  # via.rport_requested
        params = params.with_param("rport", str(source_port)).with_param("received", source_ip)
    elif not _same_address(via.host, source_ip):
        params = params.with_param("received", source_ip)
    else:
        return request
    # Built directly rather than with Via(...) or dataclasses.replace, which cost more per call.
    stamped_via = _new_via(via.transport, via.host, via.port, params, via.protocol)
    first_line = split_list(request.headers.get("Via") or "")
    first_line[0] = str(stamped_via)
    headers = request.headers.with_first_replaced("Via", ", ".join(first_line))
    # Request(method, uri, headers, body) plus every view already parsed (only the top Via
    # changed, so they need no second parse): a copy of the instance dict with two changes.
    stamped = _new(Request)
    state = stamped.__dict__
    state.update(request.__dict__)
    state["headers"] = headers
    state["vias"] = (stamped_via, *vias[1:])
    return stamped


def _same_address(host: str, ip: str) -> bool:
    if host == ip:
        return True  # the common case, decided without parsing either address
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return False  # sent-by is a host name: §18.2.1 says add received
