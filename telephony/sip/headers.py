"""Header fields: names, the `Headers` container, and typed parsers (RFC 3261 §7.3, §20, §25).

`Headers` keeps every field as (canonical name, raw value) in wire order. Names are
canonicalised once (``v`` and ``VIA`` both become ``Via``); unknown names keep their spelling
and match case-insensitively. Values are kept raw (folding already undone) so a message can be
forwarded or answered byte-faithfully; the typed parsers below turn a raw value into frozen
dataclasses when someone asks (`Request` caches the result).

Every parser raises `ParseError` (status 400) on malformed input and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from telephony.sip.errors import ParseError
from telephony.sip.uri import (
    CACHED_TEXT_LENGTH,
    EMPTY_PARAMS,
    MAX_PORT,
    PARSED_LIMIT,
    Params,
    Uri,
    parse_hostport,
    parse_uint,
    parse_uri,
)

MAX_UINT32 = 2**32 - 1

_TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN = re.compile(rf"[{_TOKEN_CHARS}]+")
_QUOTED = r'"(?:[^"\\]|\\[\s\S])*"'
# gen-value = token / host / quoted-string; host adds ':' '[' ']' for IPv6 references.
_PARAM_VALUE_CHARS = re.compile(rf"[{_TOKEN_CHARS}:\[\]]+")
_HEADER_PARAM = re.compile(
    rf"[ \t]*;[ \t]*([{_TOKEN_CHARS}]+)(?:[ \t]*=[ \t]*({_QUOTED}|[{_TOKEN_CHARS}:\[\]]+))?[ \t]*"
)
# A whole parameter list in one match; the atomic group stops the regex from backtracking into
# a parameter, so it accepts exactly the texts that matching _HEADER_PARAM repeatedly accepts.
_HEADER_PARAMS = re.compile(rf"(?>{_HEADER_PARAM.pattern})*")
_AUTH_PARAM = re.compile(rf"[ \t]*([{_TOKEN_CHARS}]+)[ \t]*=[ \t]*({_QUOTED}|[{_TOKEN_CHARS}:/\[\]]+)[ \t]*")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_QUOTED_AT = re.compile(_QUOTED)
_QUOTED_PAIR = re.compile(r"\\([\s\S])")
_WORDS = re.compile(r"[ \t]+")
_VIA = re.compile(
    rf"([{_TOKEN_CHARS}]+)[ \t]*/[ \t]*([{_TOKEN_CHARS}]+)[ \t]*/[ \t]*([{_TOKEN_CHARS}]+)[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9_\-.]*)(?:[ \t]*:[ \t]*([0-9]+))?"
)
_CSEQ = re.compile(rf"([0-9]+)[ \t]+([{_TOKEN_CHARS}]+)")
_MEDIA_TYPE = re.compile(rf"([{_TOKEN_CHARS}]+)[ \t]*/[ \t]*([{_TOKEN_CHARS}]+)")
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")

# --- names ------------------------------------------------------------------------------------

_KNOWN_NAMES = [
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "History-Info",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
]

# RFC 3261 §7.3.3 plus the compact forms later RFCs registered (3841, 3515, 3265, 3892, 4028, 8224).
COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

# Lower-cased known name or compact form -> canonical long name.
CANONICAL_NAMES = {name.lower(): name for name in _KNOWN_NAMES}
CANONICAL_NAMES.update(COMPACT_FORMS)


_CANONICAL_SPELLINGS = {name: name for name in CANONICAL_NAMES.values()}


def canonical_name(name: str) -> str:
    """The long, conventionally capitalised form of a header name; unknown names unchanged."""
    return CANONICAL_NAMES.get(name.lower(), name)


_KEYS: dict[str, str] = {}  # spelling -> lookup key; memoised because lookups are the hot path
_KEYS_LIMIT = 4096  # peers choose unknown names: never let them grow this without bound


def _key(name: str) -> str:
    key = _KEYS.get(name)
    if key is None:
        key = canonical_name(name).lower()
        if len(_KEYS) < _KEYS_LIMIT:
            _KEYS[name] = key
    return key


_NOWHERE: list[int] = []  # shared empty result of a lookup: callers only read it


def is_token(text: str) -> bool:
    return TOKEN.fullmatch(text) is not None


# --- the container ----------------------------------------------------------------------------


class Headers:
    """Immutable, ordered, case-insensitive multi-map of header fields.

    ``get`` gives the first field's raw value, ``get_all`` one value per field line, and
    ``get_list`` splits comma-separated list headers (Via, Contact, Route, Allow…) respecting
    quotes and ``<>``. The ``with_*`` methods return a new `Headers`.
    """

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: Iterable[tuple[str, object]] = ()) -> None:
        self._fields: tuple[tuple[str, str], ...] = tuple(_checked(name, value) for name, value in fields)
        self._index: dict[str, list[int]] | None = None

    @classmethod
    def _trusted(
        cls, fields: tuple[tuple[str, str], ...], index: dict[str, list[int]] | None = None
    ) -> Headers:
        """Wrap fields that are already canonicalised and validated (by the parser, or by us),
        with their index if the parser built it on the way (as `_built_index` would)."""
        headers = cls.__new__(cls)
        headers._fields = fields
        headers._index = index
        return headers

    def _built_index(self) -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        keys = _KEYS
        for position, (field_name, _) in enumerate(self._fields):
            key = keys.get(field_name) or _key(field_name)
            positions = index.get(key)
            if positions is None:
                index[key] = [position]
            else:
                positions.append(position)
        self._index = index
        return index

    def index(self) -> dict[str, list[int]]:
        """Field positions by lower-cased canonical name (``call-id``, ``x-custom``); read only."""
        index = self._index
        return index if index is not None else self._built_index()

    def _positions(self, name: str) -> list[int]:
        index = self._index
        if index is None:
            index = self._built_index()
        return index.get(_KEYS.get(name) or _key(name), _NOWHERE)

    # get/get_all/get_list inline `_positions`: they run dozens of times per message.

    def get(self, name: str, default: str | None = None) -> str | None:
        index = self._index
        if index is None:
            index = self._built_index()
        positions = index.get(_KEYS.get(name) or _key(name))
        return self._fields[positions[0]][1] if positions else default

    def get_all(self, name: str) -> tuple[str, ...]:
        index = self._index
        if index is None:
            index = self._built_index()
        positions = index.get(_KEYS.get(name) or _key(name))
        if not positions:
            return ()
        fields = self._fields
        if len(positions) == 1:
            return (fields[positions[0]][1],)
        return tuple(fields[p][1] for p in positions)

    def get_list(self, name: str) -> tuple[str, ...]:
        """Every element of a comma-separated list header, across all its field lines."""
        items: list[str] = []
        for position in self._positions(name):
            items += split_list(self._fields[position][1])
        return tuple(items)

    def count(self, name: str) -> int:
        return len(self._positions(name))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if self._index is None:
            # A response we built is asked once or twice before it is sent: a scan is cheaper
            # than building its index.
            canonical = _CANONICAL_SPELLINGS.get(name) or CANONICAL_NAMES.get(name.lower())
            if canonical is not None:
                # Every field of a known name carries its canonical spelling (the parser and
                # _checked both canonicalise), so plain string equality decides. A loop, not
                # any(generator): no generator frame to set up for a handful of fields.
                for field, _ in self._fields:  # noqa: SIM110
                    if field == canonical:
                        return True
                return False
            key = _KEYS.get(name) or _key(name)
            keys = _KEYS
            return any((keys.get(field) or _key(field)) == key for field, _ in self._fields)
        return bool(self._positions(name))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._fields == other._fields
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"

    # The with_* methods validate only the field they add: the others already were.

    def with_added(self, name: str, value: object) -> Headers:
        """A copy with one more field at the end."""
        return Headers._trusted((*self._fields, _checked(name, value)))

    def with_prepended(self, name: str, value: object) -> Headers:
        """A copy with a field placed before the first field of that name (or first of all)."""
        positions = self._positions(name)
        at = positions[0] if positions else 0
        return Headers._trusted((*self._fields[:at], _checked(name, value), *self._fields[at:]))

    def with_replaced(self, name: str, value: object) -> Headers:
        """A copy where `name` has exactly one field, `value`, where the first one was."""
        positions = self._positions(name)
        if not positions:
            return self.with_added(name, value)
        first, drop = positions[0], set(positions[1:])
        field = _checked(name, value)
        return Headers._trusted(
            tuple(field if at == first else item for at, item in enumerate(self._fields) if at not in drop)
        )

    def with_first_replaced(self, name: str, value: object) -> Headers:
        """A copy where only the first field line of `name` is replaced (e.g. the top Via line)."""
        positions = self._positions(name)
        if not positions:
            return self.with_added(name, value)
        first = positions[0]
        headers = Headers._trusted((*self._fields[:first], _checked(name, value), *self._fields[first + 1 :]))
        headers._index = self._index  # same names at the same positions (never mutated once built)
        return headers

    def without(self, name: str) -> Headers:
        drop = set(self._positions(name))
        return Headers._trusted(tuple(f for p, f in enumerate(self._fields) if p not in drop))


def _checked(name: str, value: object) -> tuple[str, str]:
    """(canonical name, stripped text) for a field built by our code; refuses what breaks the wire."""
    canonical = _CANONICAL_SPELLINGS.get(name)  # our code spells names canonically: skip lower()
    if canonical is None:
        canonical = CANONICAL_NAMES.get(name.lower())
    if canonical is None:
        if not is_token(name):
            raise ValueError(f"invalid header name {name!r}")
        canonical = name
    text = value if isinstance(value, str) else str(value)
    if "\r" in text or "\n" in text:
        raise ValueError(f"header {name} value contains CR or LF")
    return canonical, text.strip(" \t")


def split_list(value: str) -> list[str]:
    """Split a list header on commas that are outside quoted strings and ``<...>``.

    Empty elements are kept (as ``""``) so that strict parsers can reject ``a,,b``; an empty
    value is an empty list.
    """
    if "," not in value:
        value = value.strip(" \t")
        return [value] if value else []
    items = []
    start = 0
    in_quotes = in_angle = False
    position = 0
    length = len(value)
    while position < length:
        char = value[position]
        if in_quotes:
            if char == "\\":
                position += 1  # a quoted-pair: the next character cannot end the string
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_angle = True
        elif char == ">":
            in_angle = False
        elif char == "," and not in_angle:
            items.append(value[start:position].strip(" \t"))
            start = position + 1
        position += 1
    items.append(value[start:].strip(" \t"))
    return items


# --- quoting and parameters --------------------------------------------------------------------


def unquote(text: str) -> str:
    """The content of a quoted-string (quoted-pairs undone); other text is returned unchanged."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        return _QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner
    return text


def quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_params(params: Params) -> str:
    """``;name=value`` text for header parameters, quoting values that are not tokens/hosts."""
    parts = []
    for name, value in params.pairs():
        if value is None:
            parts.append(f";{name}")
        elif _PARAM_VALUE_CHARS.fullmatch(value):
            parts.append(f";{name}={value}")
        else:
            parts.append(f";{name}={quote_string(value)}")
    return "".join(parts)


def parse_params(text: str, position: int = 0) -> Params:
    """Header parameters (``;name[=value]`` with LWS allowed around ';' and '=') from `position`.

    Quoted values are stored unquoted. Empty parameters (``;;``), a trailing ';' or anything
    that is not a parameter raise.
    """
    if position >= len(text):
        return EMPTY_PARAMS
    # One C-level check of the whole text, then one C-level split, instead of a regex call,
    # two group() calls and an unquote() call per parameter. The atomic group makes the
    # check cut the text exactly where the loop in `_parse_params_one_by_one` would, so
    # `findall` yields the same pairs; anything else (a malformed or duplicate parameter)
    # goes to that loop, which finds the error to report.
    if _HEADER_PARAMS.fullmatch(text, position) is not None:
        pairs = _HEADER_PARAM.findall(text, position)
        index = {name.lower(): at for at, (name, _) in enumerate(pairs)}
        if len(index) == len(pairs):
            # findall gives "" for a parameter without a value; a value is never empty
            # (a quoted one is at least '""'), so "" can only mean None.
            if text.find('"', position) < 0:
                items = tuple([(name, value or None) for name, value in pairs])
            else:
                items = tuple([(name, unquote(value) if value else None) for name, value in pairs])
            return Params._indexed(items, index)
    return _parse_params_one_by_one(text, position)


def _parse_params_one_by_one(text: str, position: int) -> Params:
    """`parse_params` the slow way: one parameter at a time, raising at the first bad one."""
    items: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    length = len(text)
    while position < length:
        match = _HEADER_PARAM.match(text, position)
        if match is None:
            raise ParseError(f"malformed header parameters: {text[position : position + 60]!r}")
        name, value = match.group(1), match.group(2)
        key = name.lower()
        if key in seen:
            raise ParseError(f"duplicate parameter {name!r}")
        seen.add(key)
        items.append((name, None if value is None else unquote(value)))
        position = match.end()
    return Params._trusted(items)


# --- addresses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameAddr:
    """From, To, Contact, Route, Refer-To…: an optional display name, a URI, header params.

    `display_name` is the unquoted text (None when absent). `params` are the header's
    parameters (``tag``, ``expires``…), never the URI's.
    """

    uri: Uri
    display_name: str | None = None
    params: Params = EMPTY_PARAMS

    def __str__(self) -> str:
        display = f"{quote_string(self.display_name)} " if self.display_name is not None else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return type(self)(self.uri, self.display_name, self.params.with_param("tag", tag))


@dataclass(frozen=True)
class Contact(NameAddr):
    """A Contact value; ``*`` is not a Contact (see `parse_contacts`)."""

    @property
    def expires(self) -> int | None:
        """The ``expires`` parameter in seconds (0..2**32-1), None when absent."""
        value = self.params.get("expires")
        return None if value is None else parse_uint(value, MAX_UINT32, "Contact expires")

    @property
    def q(self) -> float | None:
        value = self.params.get("q")
        if value is None:
            return None
        if not _QVALUE.fullmatch(value):
            raise ParseError(f"malformed q value {value[:20]!r}")
        return float(value)


def parse_name_addr(text: str) -> NameAddr:
    address = _ADDRESSES.get(text)
    if address is None:
        address = _remember(_ADDRESSES, text, NameAddr(*_parse_address_text(text)))
    return address


def parse_contacts(values: Iterable[str]) -> tuple[tuple[Contact, ...], bool]:
    """Parse Contact list elements; returns (contacts, wildcard).

    ``*`` (remove all bindings) must stand alone, so a wildcard comes back as ``((), True)``.
    """
    items = list(values)
    if "*" in items:
        if len(items) != 1:
            raise ParseError("Contact: * must be the only contact")
        return (), True
    contacts = []
    cache = _CONTACTS
    for item in items:
        contact = cache.get(item)
        if contact is None:
            contact = _remember(cache, item, Contact(*_parse_address_text(item)))
        contacts.append(contact)
    return tuple(contacts), False


# Parsed addresses by their text: To and Contact repeat in every REGISTER of a binding, From
# in every request of a dialog. The values are immutable, so one instance can serve every
# message; bounded like uri._PARSED because peers choose the texts.
_ADDRESSES: dict[str, NameAddr] = {}
_CONTACTS: dict[str, Contact] = {}

_Value = TypeVar("_Value")


def _remember(cache: dict[str, _Value], text: str, value: _Value) -> _Value:
    if len(text) <= CACHED_TEXT_LENGTH:
        if len(cache) >= PARSED_LIMIT:
            cache.clear()
        cache[text] = value
    return value


def _parse_address_text(text: str) -> tuple[Uri, str | None, Params]:
    text = text.strip(" \t")
    if not text:
        raise ParseError("empty address")
    display_name: str | None = None
    if text[0] == '"':
        quoted = _QUOTED_AT.match(text)
        if quoted is None:
            raise ParseError("unterminated quoted display name")
        display_name = unquote(quoted.group())
        opening = quoted.end()
        while opening < len(text) and text[opening] in " \t":
            opening += 1
        if opening >= len(text) or text[opening] != "<":
            raise ParseError("display name not followed by <URI>")
    else:
        opening = text.find("<")
        if opening < 0:
            return _parse_addr_spec(text)
        words = text[:opening].strip(" \t")
        if words:
            tokens = _WORDS.split(words)
            if not all(TOKEN.fullmatch(word) for word in tokens):
                raise ParseError(f"display name must be quoted: {words[:60]!r}")
            display_name = " ".join(tokens)
    closing = text.find(">", opening)
    if closing < 0:
        raise ParseError("missing '>' after URI")
    uri = parse_uri(text[opening + 1 : closing])
    return uri, display_name, parse_params(text, closing + 1)


def _parse_addr_spec(text: str) -> tuple[Uri, None, Params]:
    # Without <>, everything after the first ';' is a header parameter (RFC 3261 §20.10):
    # ``Contact: sip:a@b;unknownparam`` puts unknownparam on the Contact, not the URI (cparam01).
    semicolon = text.find(";")
    uri_text = (text if semicolon < 0 else text[:semicolon]).rstrip(" \t")
    if "?" in uri_text or "," in uri_text:
        raise ParseError("a URI with '?' or ',' must be enclosed in <>")
    uri = parse_uri(uri_text)
    return uri, None, EMPTY_PARAMS if semicolon < 0 else parse_params(text, semicolon)


# --- Via ---------------------------------------------------------------------------------------

BRANCH_MAGIC_COOKIE = "z9hG4bK"


@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;rport;received=...``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = EMPTY_PARAMS
    protocol: str = "SIP/2.0"

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def has_rfc3261_branch(self) -> bool:
        """True when the branch is the magic cookie *plus* an id, so §17 matching applies.

        A bare ``z9hG4bK`` (RFC 4475 badbranch) carries no transaction id; like a missing
        branch it means the RFC 2543 matching rules of §17.2.3 must be used.
        """
        branch = self.branch
        return (
            branch is not None
            and len(branch) > len(BRANCH_MAGIC_COOKIE)
            and branch.startswith(BRANCH_MAGIC_COOKIE)
        )

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport_requested(self) -> bool:
        """The client asked for symmetric response routing (RFC 3581): ``;rport`` present."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The rport value a server filled in; None for the bare flag or when absent."""
        value = self.params.get("rport")
        return None if value is None else int(value)

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        value = self.params.get("ttl")
        return None if value is None else int(value)


# Sent-protocol and sent-by (the text before the first ';') -> (transport, host, port,
# protocol): every request brings a new branch, but a peer's Via starts the same way each time.
_VIA_SENT_BY: dict[str, tuple[str, str, int | None, str]] = {}


def parse_via(text: str) -> Via:
    semicolon = text.find(";")
    head = text if semicolon < 0 else text[:semicolon]
    sent_by = _VIA_SENT_BY.get(head)
    if sent_by is None:
        match = _VIA.match(text)
        if match is None:
            raise ParseError(f"malformed Via: {text[:80]!r}")
        name, version, transport, host, port_text = match.groups()
        if host.startswith("["):
            parse_hostport(host)  # validates the IPv6 address
        port = None if port_text is None else parse_uint(port_text, MAX_PORT, "Via port")
        sent_by = (transport.upper(), host, port, f"{name.upper()}/{version}")
        end = match.end()
        # Remembered only when the match is exactly the head: a ';' cannot continue a host
        # or a port, so _VIA then matches any Via starting with this head the same way.
        if end == len(head):
            _remember(_VIA_SENT_BY, head, sent_by)
    else:
        end = len(head)
    params = parse_params(text, end)
    # Validated here so the transport can read them later without a second failure mode.
    if params:
        index, items = params._positions(), params._items
        at = index.get("branch")
        if at is not None and not items[at][1]:
            raise ParseError("Via branch without a value")
        at = index.get("rport")
        value = None if at is None else items[at][1]
        if value is not None:
            parse_uint(value, MAX_PORT, "Via rport")
        at = index.get("ttl")
        value = None if at is None else items[at][1]
        if value is not None:
            parse_uint(value, 255, "Via ttl")
    transport, host, port, protocol = sent_by
    return _new_via(transport, host, port, params, protocol)


_new = object.__new__


def _new_via(transport: str, host: str, port: int | None, params: Params, protocol: str) -> Via:
    """What Via(...) gives, without the frozen dataclass's object.__setattr__ call per field
    (the parser builds several such values per datagram)."""
    via = _new(Via)
    via.__dict__.update(transport=transport, host=host, port=port, params=params, protocol=protocol)
    return via


def parse_vias(values: Iterable[str]) -> tuple[Via, ...]:
    return tuple(parse_via(value) for value in values)


# --- scalars and lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    match = _CSEQ.fullmatch(text)
    if match is None:
        raise ParseError(f"malformed CSeq: {text[:60]!r}")
    number, method = match.groups()
    cseq = _new(CSeq)  # as in _new_via
    cseq.__dict__.update(number=parse_uint(number, MAX_UINT32, "CSeq number"), method=method)
    return cseq


def parse_max_forwards(text: str) -> int:
    return parse_uint(text, 255, "Max-Forwards")


def parse_expires(text: str) -> int:
    return parse_uint(text, MAX_UINT32, "Expires")


def parse_content_length(text: str) -> int:
    return parse_uint(text, MAX_UINT32, "Content-Length")


def parse_tokens(values: Iterable[str], what: str) -> tuple[str, ...]:
    """Require, Supported, Proxy-Require, Unsupported, Allow: a list of tokens."""
    tokens = tuple(values)
    for token in tokens:
        if not TOKEN.fullmatch(token):
            raise ParseError(f"malformed {what} entry {token[:40]!r}")
    return tokens


@dataclass(frozen=True)
class MediaType:
    """A Content-Type value or an Accept media-range (``*/*``, ``application/*``)."""

    type: str
    subtype: str
    params: Params = EMPTY_PARAMS

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{format_params(self.params)}"

    @property
    def mime_type(self) -> str:
        """``type/subtype`` lower-cased, without parameters: what to compare."""
        return f"{self.type}/{self.subtype}".lower()

    def matches(self, mime_type: str) -> bool:
        """Whether this media-range accepts `mime_type` (``type/subtype``, lower case)."""
        wanted_type, _, wanted_subtype = mime_type.partition("/")
        own_type, own_subtype = self.type.lower(), self.subtype.lower()
        return own_type == "*" or (own_type == wanted_type and own_subtype in ("*", wanted_subtype))


def parse_media_type(text: str) -> MediaType:
    match = _MEDIA_TYPE.match(text)
    if match is None:
        raise ParseError(f"malformed media type: {text[:60]!r}")
    return MediaType(match.group(1), match.group(2), parse_params(text, match.end()))


def parse_media_types(values: Iterable[str]) -> tuple[MediaType, ...]:
    return tuple(parse_media_type(value) for value in values)


# --- authentication ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthValue:
    """Authorization / Proxy-Authorization / WWW-Authenticate / Proxy-Authenticate.

    ``scheme`` as written (compare case-insensitively); ``params`` with quoted values unquoted;
    ``token68`` for schemes that carry a single blob instead of parameters.
    """

    scheme: str
    params: Params = EMPTY_PARAMS
    token68: str | None = None


def parse_auth(text: str) -> AuthValue:
    scheme, *tail = _WORDS.split(text.strip(" \t"), maxsplit=1)
    rest = tail[0] if tail else ""
    if not TOKEN.fullmatch(scheme):
        raise ParseError(f"malformed auth scheme {scheme[:40]!r}")
    if not rest:
        return AuthValue(scheme)
    items: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    position = 0
    while True:
        match = _AUTH_PARAM.match(rest, position)
        if match is None:
            if not items and _TOKEN68.fullmatch(rest):
                return AuthValue(scheme, token68=rest)
            raise ParseError(f"malformed auth parameters: {rest[position : position + 60]!r}")
        name = match.group(1)
        if name.lower() in seen:
            raise ParseError(f"duplicate auth parameter {name!r}")
        seen.add(name.lower())
        items.append((name, unquote(match.group(2))))
        position = match.end()
        if position == len(rest):
            return AuthValue(scheme, Params._trusted(items))
        if rest[position] != ",":
            raise ParseError(f"malformed auth parameters: {rest[position : position + 60]!r}")
        position += 1
