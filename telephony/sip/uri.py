"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25; RFC 3966), and ordered parameter lists.

`parse_uri(text)` returns one of three frozen values:

- `SipUri` for ``sip:``/``sips:``: every component is stored *unescaped* (``%75ser`` is
  ``user``, ``%00`` is a NUL character), and `str()` escapes again only what the grammar
  requires, so two spellings of the same URI compare equal. The user part is kept whole:
  ``sip:user;par=u%40example.net@example.com`` has user ``user;par=u@example.net``
  (RFC 4475 semiuri), never split into parameters.
- `TelUri` for ``tel:`` (number and parameters).
- `AbsoluteUri` for any other scheme (``http:``, ``isbn:``, ``soap.beep:``…): kept opaque so
  a UAS can still answer 416 Unsupported URI Scheme instead of 400.

Hosts keep their spelling; IPv6 references keep their brackets (``[2001:db8::1]``), which is
how they appear in every SIP header. `SipUri.address_of_record()` gives the comparison key a
registrar indexes bindings by (RFC 3261 §10.3 step 5).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias
from urllib.parse import quote, unquote_to_bytes

from telephony.sip.errors import ParseError

_ESCAPED = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"

# Character sets straight from the RFC 3261 §25 ABNF, one per URI component.
_USER = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+")
_PASSWORD = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*")
_PARAM_TEXT = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})+")
_HEADER_NAME = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})+")
_HEADER_VALUE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-.]*")  # '_' tolerated: seen in the wild
_IPV6_REFERENCE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_TEL_NUMBER = re.compile(r"\+?[0-9A-Fa-f*#\-.()pPwW]+")
# An opaque URI may hold anything printable except what would end it inside a header.
_OPAQUE = re.compile(r"[^\s<>\"]*")

_UNRESERVED_CHARS = "-_.!~*'()"
_USER_SAFE = _UNRESERVED_CHARS + "&=+$,;?/"
_PASSWORD_SAFE = _UNRESERVED_CHARS + "&=+$,"
_PARAM_SAFE = _UNRESERVED_CHARS + "[]/:&+$"
_HEADER_SAFE = _UNRESERVED_CHARS + "[]/?:+$"

_PLAIN = re.compile(rf"[{_UNRESERVED}]*")

MAX_PORT = 65535


class Params(Mapping[str, "str | None"]):
    """Ordered, immutable ``;name=value`` parameters; names compare case-insensitively.

    A flag parameter (``;lr``, ``;rport``) maps to None, so test presence with ``in``,
    not with ``.get()``. Equality and hashing are exact (names as written, order kept).
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str | None]] = ()) -> None:
        self._items: tuple[tuple[str, str | None], ...] = tuple(items)
        self._index: dict[str, int] | None = None
        if len(self._positions()) != len(self._items):
            raise ValueError(f"duplicate parameter names in {self._items!r}")

    @classmethod
    def _trusted(cls, items: list[tuple[str, str | None]]) -> Params:
        """Wrap items a parser has already checked for duplicates; the index is built on demand."""
        params = cls.__new__(cls)
        params._items = tuple(items)
        params._index = None
        return params

    @classmethod
    def _indexed(cls, items: tuple[tuple[str, str | None], ...], index: dict[str, int]) -> Params:
        """Wrap items with the index a parser built anyway (lower-cased name -> position)."""
        params = cls.__new__(cls)
        params._items = items
        params._index = index
        return params

    def _positions(self) -> dict[str, int]:
        index = self._index
        if index is None:
            index = self._index = {name.lower(): at for at, (name, _) in enumerate(self._items)}
        return index

    def __getitem__(self, name: str) -> str | None:
        return self._items[self._positions()[name.lower()]][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._positions()

    def get(self, name: str, default: str | None = None) -> str | None:
        if not self._items:
            return default  # most parameter lists are empty: skip building an index
        position = self._positions().get(name.lower())
        return default if position is None else self._items[position][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Params({list(self._items)!r})"

    def pairs(self) -> tuple[tuple[str, str | None], ...]:
        """The parameters as (name, value) pairs, in wire order."""
        return self._items

    def with_param(self, name: str, value: str | None = None) -> Params:
        """A copy with `name` set to `value` (replaced in place, or appended)."""
        # Names stay unique either way, so the copy skips the constructor's duplicate check,
        # and it gets its index from ours (indexes are never changed once built).
        index = self._positions()
        key = name.lower()
        position = index.get(key)
        items = list(self._items)
        if position is not None:
            items[position] = (name, value)
            return Params._indexed(tuple(items), index)  # same names at the same positions
        index = {**index, key: len(items)}
        items.append((name, value))
        return Params._indexed(tuple(items), index)

    def without(self, *names: str) -> Params:
        """A copy without the given parameters (absent names are ignored)."""
        drop = {name.lower() for name in names}
        return Params(item for item in self._items if item[0].lower() not in drop)


EMPTY_PARAMS = Params()


def unescape(text: str) -> str:
    """Decode %XX escapes; bytes that are not UTF-8 survive as surrogates (round-trip safe)."""
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def escape(text: str, safe: str) -> str:
    """%-escape every character outside the unreserved set plus `safe`."""
    if _PLAIN.fullmatch(text):
        return text  # nothing to escape: every `safe` set here includes the unreserved marks
    return quote(text, safe=safe, encoding="utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI with every component unescaped."""

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    password: str | None = None
    params: Params = EMPTY_PARAMS
    # URI headers (``?Route=...``): allowed in Contact/Refer-To, never in a Request-URI.
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        # Memoised on the instance: parse_uri hands the same instance to every message that
        # carries this URI, and the registrar and responses format it again each time.
        text = self.__dict__.get("_text")
        if text is None:
            text = self.__dict__["_text"] = self._format()
        return text

    def _format(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                parts += (":", escape(self.password, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params.pairs():
            parts += (";", escape(name, _PARAM_SAFE))
            if value is not None:
                parts += ("=", escape(value, _PARAM_SAFE))
        if self.headers:
            parts.append("?")
            parts.append(
                "&".join(f"{escape(n, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for n, v in self.headers)
            )
        return "".join(parts)

    @property
    def is_secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased (``udp``, ``tcp``, ``tls``, ``ws``…)."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def loose_route(self) -> bool:
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def host_address(self) -> str:
        """The host without IPv6 brackets, as a socket layer wants it."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def address_of_record(self) -> SipUri:
        """The registrar's binding key (RFC 3261 §10.3 step 5).

        Parameters, headers and password removed, components unescaped (they already are),
        host lower-cased because host comparison is case-insensitive (§19.1.4).
        """
        return SipUri(host=self.host.lower(), user=self.user, port=self.port, scheme=self.scheme)

    def with_params(self, params: Params) -> SipUri:
        return SipUri(self.host, self.user, self.port, self.scheme, self.password, params, self.headers)


@dataclass(frozen=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number as written plus parameters (``phone-context``…)."""

    number: str
    params: Params = EMPTY_PARAMS
    scheme: str = field(default="tel", init=False)

    def __str__(self) -> str:
        tail = "".join(
            f";{escape(n, _PARAM_SAFE)}" + ("" if v is None else f"={escape(v, _PARAM_SAFE)}")
            for n, v in self.params.pairs()
        )
        return f"tel:{self.number}{tail}"

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")


@dataclass(frozen=True)
class AbsoluteUri:
    """A URI whose scheme we do not interpret; `rest` is everything after the colon, verbatim."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri: TypeAlias = SipUri | TelUri | AbsoluteUri


# Parsed URIs by their text. The values are immutable, and the same few URIs come back in
# every message of a peer (Request-URI, To, Contact), so parsing is skipped for them. Bounded
# (emptied when full, short texts only) because peers choose the texts.
_PARSED: dict[str, Uri] = {}
PARSED_LIMIT = 4096
CACHED_TEXT_LENGTH = 256


def parse_uri(text: str) -> Uri:
    """Parse a URI as it appears in a request line or between ``<`` and ``>``."""
    uri = _PARSED.get(text)
    if uri is None:
        uri = _parse_uri(text)
        if len(text) <= CACHED_TEXT_LENGTH:
            if len(_PARSED) >= PARSED_LIMIT:
                _PARSED.clear()
            _PARSED[text] = uri
    return uri


def _parse_uri(text: str) -> Uri:
    colon = text.find(":")
    if colon <= 0 or not _SCHEME.fullmatch(text, 0, colon):
        raise ParseError(f"not a URI (no scheme): {text[:80]!r}")
    scheme = text[:colon].lower()
    rest = text[colon + 1 :]
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        return _parse_tel(rest)
    if not rest or not _OPAQUE.fullmatch(rest):
        raise ParseError(f"malformed {scheme}: URI")
    return AbsoluteUri(text[:colon], rest)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user = password = None
    # The user part may hold ';' and '?' (semiuri, intmeth), but never an unescaped '@',
    # and the host part cannot hold one either: the first '@' ends the userinfo.
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        raw_user, colon, raw_password = userinfo.partition(":")
        if not _USER.fullmatch(raw_user):
            raise ParseError(f"malformed user part in {scheme}: URI")
        user = unescape(raw_user)
        if colon:
            if not _PASSWORD.fullmatch(raw_password):
                raise ParseError(f"malformed password in {scheme}: URI")
            password = unescape(raw_password)

    headers: tuple[tuple[str, str], ...] = ()
    rest, question, raw_headers = rest.partition("?")
    if question:
        headers = _parse_uri_headers(raw_headers)
    hostport, semicolon, raw_params = rest.partition(";")
    host, port = parse_hostport(hostport)
    params = parse_uri_params(raw_params) if semicolon else EMPTY_PARAMS
    return SipUri(host, user, port, scheme, password, params, headers)


def _parse_tel(rest: str) -> TelUri:
    number, semicolon, raw_params = rest.partition(";")
    if not _TEL_NUMBER.fullmatch(number):
        raise ParseError("malformed tel: number")
    params = parse_uri_params(raw_params) if semicolon else EMPTY_PARAMS
    return TelUri(number, params)


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]``; IPv6 references keep their brackets."""
    if text.startswith("["):
        end = text.find("]") + 1
        host, tail = text[:end], text[end:]
        if not end or not _IPV6_REFERENCE.fullmatch(host):
            raise ParseError("malformed IPv6 reference")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ParseError(f"malformed IPv6 address {host!r}") from None
    else:
        host, colon, port_text = text.partition(":")
        tail = colon + port_text
        if not _HOSTNAME.fullmatch(host):
            raise ParseError(f"malformed host {host[:80]!r}")
    if not tail:
        return host, None
    if tail[0] != ":":
        raise ParseError(f"malformed host/port {text[:80]!r}")
    return host, parse_uint(tail[1:], MAX_PORT, "port")


def parse_uint(text: str, maximum: int, what: str) -> int:
    """An unsigned decimal with optional leading zeros (wsinv ``0068``), at most `maximum`.

    Checks length before calling int(): a peer's 10 000-digit number must neither cost CPU
    nor hit Python's int-conversion digit limit (which raises ValueError).
    """
    if len(text) < 10 and text.isdigit() and text.isascii():
        value = int(text)  # nine digits at most: cheap, and within Python's digit limit
        if value <= maximum:
            return value
    if not text or not text.isascii() or not text.isdigit():
        raise ParseError(f"{what} is not a number: {text[:40]!r}")
    significant = text.lstrip("0")
    if len(significant) > len(str(maximum)) or (significant and int(significant) > maximum):
        raise ParseError(f"{what} out of range (max {maximum}): {text[:40]!r}")
    return int(significant or "0")


def parse_uri_params(text: str) -> Params:
    """``name[=value]`` items separated by ';' (the text after the first ';')."""
    items: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in text.split(";"):
        name, equals, value = item.partition("=")
        if not _PARAM_TEXT.fullmatch(name) or (equals and not _PARAM_TEXT.fullmatch(value)):
            raise ParseError(f"malformed URI parameter {item[:80]!r}")
        name = unescape(name)
        if name.lower() in seen:
            raise ParseError(f"duplicate URI parameter {name!r}")
        seen.add(name.lower())
        items.append((name, unescape(value) if equals else None))
    return Params._trusted(items)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers = []
    for item in text.split("&"):
        name, equals, value = item.partition("=")
        if not equals or not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(value):
            raise ParseError(f"malformed URI header {item[:80]!r}")
        headers.append((unescape(name), unescape(value)))
    return tuple(headers)
