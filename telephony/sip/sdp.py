"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for one audio stream, sans-I/O.

`parse_sdp` turns a body into a `SessionDescription`, which keeps every line (known ones
structured, unknown ones verbatim) so `to_bytes` writes it back. `build_answer` answers an
offer with one codec chosen in OUR preference order (the product's documented priority:
PCMU, then PCMA, then G.722, G.729 only when licensed), `build_offer` writes our own offers
and `accept_answer` reads the peer's answer to one of them. Host names in c= lines are kept
as text, never resolved.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from telephony.sip.errors import LocalError, NotAcceptableHere, ParseError

# --- codecs -----------------------------------------------------------------------------------

# RFC 3551 static audio payload types: (encoding name, RTP clock rate, channels).
_STATIC_AUDIO: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1),
    7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    12: ("QCELP", 8000, 1),
    13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1),
    15: ("G728", 8000, 1),
    16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1),
    18: ("G729", 8000, 1),
}
# G.722 samples audio at 16 kHz but its RTP clock runs at 8000 (an RFC 3551 §4.5.2 quirk kept
# for compatibility); every other codec here samples at its clock rate.
_SAMPLE_RATE = {"G722": 16000}
# What we can put on the wire: name -> (static payload type, RTP clock rate).
_OUR_CODECS = {"PCMU": (0, 8000), "PCMA": (8, 8000), "G722": (9, 8000), "G729": (18, 8000)}
TELEPHONE_EVENT = "telephone-event"
DEFAULT_PREFERENCES = ("PCMU", "PCMA", "G722")
# RFC 4733 events 0-15 are the DTMF digits and A-D, 16 is flash; a peer that offers
# telephone-event without fmtp means 0-15.
_OUR_EVENTS = frozenset(range(17))
_DEFAULT_EVENTS = frozenset(range(16))


@dataclass(frozen=True)
class MediaFormat:
    """One RTP payload format of an m= line, resolved through a=rtpmap or the static table."""

    name: str
    payload_type: int
    rtp_clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    @property
    def sample_rate(self) -> int:
        """The audio sampling rate, which for G.722 is not the RTP clock rate."""
        return _SAMPLE_RATE.get(self.name.upper(), self.rtp_clock_rate)

    def is_named(self, name: str) -> bool:
        return self.name.lower() == name.lower()


class Direction(StrEnum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def mirrored(self) -> Direction:
        """The answer to an offer with this direction (RFC 3264 §6.1): sendonly <-> recvonly."""
        return Direction.of(sends=self.receives, receives=self.sends)


_DIRECTIONS = frozenset(d.value for d in Direction)


# --- the description --------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return " ".join(
            (self.username, self.session_id, self.session_version, self.nettype, self.addrtype, self.address)
        )


@dataclass(frozen=True)
class Connection:
    """A c= line. `address` is bare (an IP literal or a host name); `suffix` keeps a multicast
    TTL/count such as '/127' for writing back."""

    addrtype: str
    address: str
    nettype: str = "IN"
    suffix: str = ""

    @property
    def is_hold_address(self) -> bool:
        """0.0.0.0: the RFC 2543 hold, meaning 'send nothing here' (RFC 3264 §8.4)."""
        return self.address == "0.0.0.0"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}{self.suffix}"


@dataclass(frozen=True)
class Attribute:
    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


def _find(attributes: Iterable[Attribute], name: str) -> list[Attribute]:
    return [a for a in attributes if a.name.lower() == name]


def _direction(attributes: Iterable[Attribute]) -> Direction | None:
    for attribute in attributes:
        if attribute.value is None and attribute.name.lower() in _DIRECTIONS:
            return Direction(attribute.name.lower())
    return None


@dataclass(frozen=True)
class MediaDescription:
    """An m= section. `other` holds its i=, b=, k=, extra c= and unknown lines, verbatim."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    port_count: int | None = None
    other: tuple[tuple[str, str], ...] = ()

    @property
    def rtpmaps(self) -> dict[int, tuple[str, int, int]]:
        """payload type -> (encoding name, clock rate, channels), from a=rtpmap."""
        return dict(_parse_rtpmap(a.value or "") for a in _find(self.attributes, "rtpmap"))

    @property
    def fmtps(self) -> dict[str, str]:
        return dict(_parse_fmtp(a.value or "") for a in _find(self.attributes, "fmtp"))

    @property
    def formats_resolved(self) -> tuple[MediaFormat, ...]:
        """The RTP formats in offer order; dynamic types without an rtpmap are left out."""
        rtpmaps, fmtps = self.rtpmaps, self.fmtps
        resolved = []
        for fmt in self.formats:
            if not _DIGITS.fullmatch(fmt) or int(fmt) > 127:
                continue
            pt = int(fmt)
            name, clock, channels = rtpmaps.get(pt) or _STATIC_AUDIO.get(pt) or ("", 0, 0)
            if name:
                resolved.append(MediaFormat(name, pt, clock, channels, fmtps.get(fmt)))
        return tuple(resolved)

    @property
    def ptime(self) -> int | None:
        found = _find(self.attributes, "ptime")
        return _parse_ms(found[0].value or "", "ptime") if found else None

    @property
    def maxptime(self) -> int | None:
        found = _find(self.attributes, "maxptime")
        return _parse_ms(found[0].value or "", "maxptime") if found else None

    @property
    def rtcp(self) -> tuple[int, Connection | None] | None:
        """a=rtcp (RFC 3605): the RTCP port, and its address when one is given."""
        found = _find(self.attributes, "rtcp")
        return _parse_rtcp(found[0].value or "") if found else None

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute, if any (see `SessionDescription.direction_of`)."""
        return _direction(self.attributes)

    def to_lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [" ".join((f"m={self.kind}", port, self.proto, *self.formats))]
        ranked: list[tuple[int, int, str]] = [
            (_MEDIA_RANK.get(t, 5), i, f"{t}={v}") for i, (t, v) in enumerate(self.other)
        ]
        if self.connection is not None:
            ranked.append((1, -1, f"c={self.connection}"))
        ranked += [(4, i, f"a={a}") for i, a in enumerate(self.attributes)]
        return lines + [line for *_, line in sorted(ranked)]


@dataclass(frozen=True)
class SessionDescription:
    """A whole SDP body. `other` holds the session-level lines not modelled here (i=, u=, e=,
    p=, b=, t=, r=, z=, k=, a second c= and unknown ones), verbatim, in RFC 4566 order."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    other: tuple[tuple[str, str], ...] = (("t", "0 0"),)
    version: int = 0

    @property
    def direction(self) -> Direction | None:
        return _direction(self.attributes)

    def direction_of(self, media: MediaDescription) -> Direction:
        """Media-level attribute, else session-level, else sendrecv (RFC 3264 §5.1)."""
        return media.direction or self.direction or Direction.SENDRECV

    def connection_of(self, media: MediaDescription) -> Connection | None:
        """A media-level c= overrides the session-level one (RFC 4566 §5.7)."""
        return media.connection or self.connection

    def to_bytes(self) -> bytes:
        ranked: list[tuple[int, int, str]] = [
            (_SESSION_RANK.get(t, 10), i, f"{t}={v}") for i, (t, v) in enumerate(self.other)
        ]
        if self.connection is not None:
            ranked.append((4, -1, f"c={self.connection}"))
        ranked += [(9, i, f"a={a}") for i, a in enumerate(self.attributes)]
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        lines += [line for *_, line in sorted(ranked)]
        for media in self.media:
            lines += media.to_lines()
        return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")


# Where each line type goes when written (RFC 4566 §5); t= and r= share a rank so each r=
# stays after its own t=, and a second c= goes right after the first.
_SESSION_RANK = {"i": 0, "u": 1, "e": 2, "p": 3, "c": 4, "b": 5, "t": 6, "r": 6, "z": 7, "k": 8}
_MEDIA_RANK = {"i": 0, "c": 1, "b": 2, "k": 3}


def _in_rfc_order(
    lines: Iterable[tuple[str, str]], ranks: dict[str, int], unknown: int
) -> tuple[tuple[str, str], ...]:
    """Stable sort into the order `to_bytes` writes, so parse -> write -> parse is the identity."""
    return tuple(sorted(lines, key=lambda line: ranks.get(line[0], unknown)))


# --- parsing ----------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")
_LINE_RE = re.compile(r"([a-z])=(.*)")
_HOST_RE = re.compile(r"[A-Za-z0-9.\-]+")
_RTPMAP_RE = re.compile(r"([0-9]{1,3})\s+([^/\s]+)/([0-9]{1,9})(?:/([0-9]{1,3}))?\s*")
_MS_RE = re.compile(r"([0-9]{1,6})(?:\.[0-9]*)?")


def _parse_rtpmap(value: str) -> tuple[int, tuple[str, int, int]]:
    found = _RTPMAP_RE.fullmatch(value)
    if found is None or int(found.group(1)) > 127 or int(found.group(3)) == 0:
        raise ParseError(f"bad a=rtpmap:{value}")
    channels = int(found.group(4)) if found.group(4) else 1
    return int(found.group(1)), (found.group(2), int(found.group(3)), channels)


def _parse_fmtp(value: str) -> tuple[str, str]:
    fields = value.split(None, 1)
    if not fields:
        raise ParseError(f"bad a=fmtp:{value}")
    return fields[0], fields[1].strip() if len(fields) > 1 else ""


def _parse_ms(value: str, name: str) -> int:
    # Some stacks write "20.0"; the value is milliseconds either way.
    found = _MS_RE.fullmatch(value.strip())
    if found is None or int(found.group(1)) == 0:
        raise ParseError(f"bad a={name}:{value}")
    return int(found.group(1))


def _parse_port(text: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) > 65535:
        raise ParseError(f"bad port {text!r}")
    return int(text)


def _parse_connection(value: str) -> Connection:
    fields = value.split()
    if len(fields) != 3 or fields[0].upper() != "IN" or fields[1].upper() not in ("IP4", "IP6"):
        raise ParseError(f"bad c={value}")
    addrtype = fields[1].upper()
    address, slash, suffix = fields[2].partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        if not _HOST_RE.fullmatch(address):
            raise ParseError(f"bad connection address {address!r}") from None
    else:
        if (ip.version == 4) != (addrtype == "IP4"):
            raise ParseError(f"c= says {addrtype} but holds {address}")
    return Connection(addrtype=addrtype, address=address, nettype=fields[0], suffix=slash + suffix)


def _parse_rtcp(value: str) -> tuple[int, Connection | None]:
    port, _, rest = value.strip().partition(" ")
    return _parse_port(port), (_parse_connection(rest) if rest.strip() else None)


def _parse_origin(value: str) -> Origin:
    fields = value.split()
    if len(fields) != 6:
        raise ParseError(f"bad o={value}")
    return Origin(*fields)


def _parse_media_line(value: str) -> MediaDescription:
    fields = value.split()
    if len(fields) < 3:
        raise ParseError(f"bad m={value}")
    port, slash, count = fields[1].partition("/")
    if slash and not _DIGITS.fullmatch(count):
        raise ParseError(f"bad port count in m={value}")
    return MediaDescription(
        kind=fields[0],
        port=_parse_port(port),
        proto=fields[2],
        formats=tuple(fields[3:]),
        port_count=int(count) if slash else None,
    )


def _parse_attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name:
        raise ParseError(f"bad a={value}")
    return Attribute(name, rest if colon else None)


def _check_media(media: MediaDescription, session_connection: Connection | None) -> None:
    # Parse what the properties parse now, so a bad value is a 400 here, not an error later.
    _ = (media.rtpmaps, media.fmtps, media.ptime, media.maxptime, media.rtcp)
    if media.port != 0 and media.connection is None and session_connection is None:
        raise ParseError(f"no c= line for the {media.kind} stream")


class _Section:
    """Lines of one section while parsing."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.attributes: list[Attribute] = []
        self.other: list[tuple[str, str]] = []

    def add(self, kind: str, value: str) -> None:
        if kind == "a":
            self.attributes.append(_parse_attribute(value))
        elif kind == "c" and self.connection is None:
            self.connection = _parse_connection(value)
        else:
            self.other.append((kind, value))


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body (CRLF or bare LF line ends). Malformed -> ParseError(400)."""
    # surrogateescape: a stray non-UTF-8 byte in s= or i= survives to_bytes unchanged.
    text = body.decode("utf-8", "surrogateescape")
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "v=0":
        raise ParseError("SDP must start with v=0")
    origin: Origin | None = None
    session_name = ""
    session = _Section()
    media_heads: list[MediaDescription] = []
    media_sections: list[_Section] = []
    for line in lines[1:]:
        found = _LINE_RE.fullmatch(line)
        if found is None:
            raise ParseError(f"not an SDP line: {line[:40]!r}")
        kind, value = found.groups()
        if kind == "v":
            raise ParseError("a second v= line")
        if kind == "m":
            media_heads.append(_parse_media_line(value))
            media_sections.append(_Section())
        elif media_sections:
            if kind in "os":
                raise ParseError(f"{kind}= inside a media section")
            media_sections[-1].add(kind, value)
        elif kind == "o":
            if origin is not None:
                raise ParseError("a second o= line")
            origin = _parse_origin(value)
        elif kind == "s":
            session_name = value
        else:
            session.add(kind, value)
    if origin is None:
        raise ParseError("SDP without o= line")
    media = tuple(
        replace(
            head,
            connection=s.connection,
            attributes=tuple(s.attributes),
            other=_in_rfc_order(s.other, _MEDIA_RANK, 5),
        )
        for head, s in zip(media_heads, media_sections, strict=True)
    )
    for m in media:
        _check_media(m, session.connection)
    return SessionDescription(
        origin=origin,
        session_name=session_name,
        connection=session.connection,
        attributes=tuple(session.attributes),
        media=media,
        other=_in_rfc_order(session.other, _SESSION_RANK, 10),
    )


# --- offer / answer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioSession:
    """The negotiated audio stream, from our side.

    `ptime` is the packetisation the peer asked to receive (20 when it did not say);
    `direction` is what WE may do: `direction.sends` is False on hold, including the RFC 2543
    hold where the peer's address is 0.0.0.0.
    """

    codec: MediaFormat
    telephone_event_pt: int | None
    remote_address: str
    remote_port: int
    ptime: int
    direction: Direction
    media_index: int = 0


@dataclass(frozen=True)
class Answer:
    sdp: SessionDescription
    audio: AudioSession

    def to_bytes(self) -> bytes:
        return self.sdp.to_bytes()


def _addrtype(address: str) -> str:
    try:
        return "IP4" if ipaddress.ip_address(address).version == 4 else "IP6"
    except ValueError:
        raise LocalError(f"our media address must be an IP literal, not {address!r}") from None


def _parse_events(fmtp: str | None) -> frozenset[int]:
    """RFC 4733 §2.4.1 event list ('0-15,66'); an unreadable list counts as the default."""
    if not fmtp:
        return _DEFAULT_EVENTS
    events: set[int] = set()
    for item in fmtp.replace(" ", "").split(","):
        low, dash, high = item.partition("-")
        if not _DIGITS.fullmatch(low) or (dash and not _DIGITS.fullmatch(high)):
            return _DEFAULT_EVENTS
        if int(high if dash else low) - int(low) > 255:
            return _DEFAULT_EVENTS
        events.update(range(int(low), int(high if dash else low) + 1))
    return frozenset(events)


def _format_events(events: Iterable[int]) -> str:
    ranges: list[list[int]] = []
    for event in sorted(events):
        if ranges and ranges[-1][1] == event - 1:
            ranges[-1][1] = event
        else:
            ranges.append([event, event])
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _codec_attributes(codec: MediaFormat) -> list[Attribute]:
    attributes = [Attribute("rtpmap", f"{codec.payload_type} {codec.name}/{codec.rtp_clock_rate}")]
    if codec.fmtp:
        attributes.append(Attribute("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    return attributes


def _telephone_event(media: MediaDescription) -> tuple[MediaFormat, frozenset[int]] | None:
    for fmt in media.formats_resolved:
        # Our codecs all clock at 8000 and RFC 4733 events must share the audio's clock.
        if fmt.is_named(TELEPHONE_EVENT) and fmt.rtp_clock_rate == 8000:
            events = _parse_events(fmt.fmtp) & _OUR_EVENTS
            if events:
                return fmt, events
    return None


def _choose(media: MediaDescription, preferences: Sequence[str]) -> MediaFormat | None:
    offered = media.formats_resolved
    for name in preferences:
        for fmt in offered:
            if (
                fmt.is_named(name)
                and fmt.rtp_clock_rate == _OUR_CODECS[name.upper()][1]
                and fmt.channels == 1
            ):
                return fmt
    return None


def _session(
    *,
    local_address: str,
    session_id: int,
    session_version: int,
    username: str,
    media: Sequence[MediaDescription],
    timing: Sequence[tuple[str, str]] = (("t", "0 0"),),
) -> SessionDescription:
    addrtype = _addrtype(local_address)
    return SessionDescription(
        origin=Origin(username, str(session_id), str(session_version), "IN", addrtype, local_address),
        session_name="-",
        connection=Connection(addrtype=addrtype, address=local_address),
        media=tuple(media),
        other=tuple(timing),
    )


def build_answer(
    offer: SessionDescription,
    *,
    local_address: str,
    local_port: int,
    session_id: int,
    session_version: int,
    preferences: Sequence[str] = DEFAULT_PREFERENCES,
    allow_g729: bool = False,
    dtmf: bool = True,
    username: str = "smartalex",
) -> Answer:
    """Answer an offer (RFC 3264 §6): the first RTP/AVP audio stream with a codec we take.

    The codec is the first of OUR `preferences` the offer contains, whatever the offer's own
    order: the product documents PCMU > PCMA > G.722 as its priority, and one fixed choice
    keeps transcoding and support predictable. G.729 is only considered with `allow_g729`
    (licensing). Exactly one codec is answered (plus telephone-event, on the offer's payload
    type) so the peer cannot switch codecs mid-call. Every other stream is refused with port 0,
    and SRTP profiles (RTP/SAVP...) are refused too until we handle keys. No usable audio ->
    NotAcceptableHere (488).
    """
    usable = [p.upper() for p in preferences if p.upper() in _OUR_CODECS]
    usable = [p for p in usable if p != "G729" or allow_g729]
    if allow_g729 and "G729" not in usable:
        usable.append("G729")

    chosen: tuple[int, MediaFormat] | None = None
    for index, media in enumerate(offer.media):
        if media.kind.lower() == "audio" and media.port != 0 and media.proto.upper() == "RTP/AVP":
            codec = _choose(media, usable)
            if codec is not None:
                chosen = (index, codec)
                break
    if chosen is None:
        raise NotAcceptableHere("no audio stream with PCMU, PCMA or G.722 (or allowed G.729)")
    index, codec = chosen
    offered = offer.media[index]
    # We answer without the offer's fmtp; for G.729 we say annexb=no because Annex B
    # (silence suppression) frames are not something our media layer decodes.
    codec = replace(codec, fmtp="annexb=no" if codec.is_named("G729") else None)

    remote = offer.connection_of(offered)
    assert remote is not None  # parse_sdp refuses an active stream without c=
    direction = offer.direction_of(offered).mirrored()
    if remote.is_hold_address:
        direction = Direction.of(sends=False, receives=direction.receives)

    event = _telephone_event(offered) if dtmf else None
    formats = [str(codec.payload_type)]
    attributes = _codec_attributes(codec)
    if event is not None:
        event_format, events = event
        formats.append(str(event_format.payload_type))
        attributes += _codec_attributes(replace(event_format, fmtp=_format_events(events)))
    attributes += [Attribute("ptime", "20"), Attribute(direction.value)]

    answered = [
        MediaDescription(
            kind=offered.kind,
            port=local_port,
            proto=offered.proto,
            formats=tuple(formats),
            attributes=tuple(attributes),
        )
        if i == index
        else MediaDescription(kind=m.kind, port=0, proto=m.proto, formats=m.formats or ("0",))
        for i, m in enumerate(offer.media)
    ]
    # RFC 3264 §6: the answer's t= must equal the offer's.
    timing = [(t, v) for t, v in offer.other if t in ("t", "r")] or [("t", "0 0")]
    sdp = _session(
        local_address=local_address,
        session_id=session_id,
        session_version=session_version,
        username=username,
        media=answered,
        timing=timing,
    )
    audio = AudioSession(
        codec=codec,
        telephone_event_pt=event[0].payload_type if event is not None else None,
        remote_address=remote.address,
        remote_port=offered.port,
        ptime=offered.ptime or 20,
        direction=direction,
        media_index=index,
    )
    return Answer(sdp=sdp, audio=audio)


def build_offer(
    *,
    local_address: str,
    local_port: int,
    session_id: int,
    session_version: int,
    codecs: Sequence[str] = DEFAULT_PREFERENCES,
    dtmf: bool = True,
    telephone_event_pt: int = 101,
    ptime: int = 20,
    direction: Direction = Direction.SENDRECV,
    username: str = "smartalex",
) -> SessionDescription:
    """Our offer for an outbound call: one audio stream, `codecs` in preference order."""
    formats: list[str] = []
    attributes: list[Attribute] = []
    for name in codecs:
        if name.upper() not in _OUR_CODECS:
            raise ValueError(f"we cannot offer {name!r}")
        pt, clock = _OUR_CODECS[name.upper()]
        codec = MediaFormat(name.upper(), pt, clock, fmtp="annexb=no" if name.upper() == "G729" else None)
        formats.append(str(pt))
        attributes += _codec_attributes(codec)
    if dtmf:
        if not 96 <= telephone_event_pt <= 127:
            raise ValueError("telephone-event needs a dynamic payload type (96-127)")
        formats.append(str(telephone_event_pt))
        attributes += _codec_attributes(
            MediaFormat(TELEPHONE_EVENT, telephone_event_pt, 8000, fmtp=_format_events(_OUR_EVENTS))
        )
    attributes += [Attribute("ptime", str(ptime)), Attribute(direction.value)]
    media = MediaDescription(
        kind="audio", port=local_port, proto="RTP/AVP", formats=tuple(formats), attributes=tuple(attributes)
    )
    return _session(
        local_address=local_address,
        session_id=session_id,
        session_version=session_version,
        username=username,
        media=[media],
    )


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> AudioSession:
    """Read the peer's answer to our `offer`: the first accepted audio stream and its codec.

    The codec is the first format of the answer that we offered (RFC 3264 §6.1: the answerer's
    preference). An answer that accepts nothing we offered -> NotAcceptableHere.
    """
    if len(answer.media) != len(offer.media):
        raise NotAcceptableHere("the answer does not have one m= line per offered stream")
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if ours.kind.lower() != "audio" or theirs.port == 0:
            continue
        offered = ours.formats_resolved
        codec = next(
            (
                f
                for f in theirs.formats_resolved
                if not f.is_named(TELEPHONE_EVENT)
                and any(o.is_named(f.name) and o.rtp_clock_rate == f.rtp_clock_rate for o in offered)
            ),
            None,
        )
        if codec is None:
            continue
        event = next((f for f in theirs.formats_resolved if f.is_named(TELEPHONE_EVENT)), None)
        remote = answer.connection_of(theirs)
        if remote is None:
            continue
        their_direction = answer.direction_of(theirs)
        ours_direction = offer.direction_of(ours)
        direction = Direction.of(
            sends=ours_direction.sends and their_direction.receives and not remote.is_hold_address,
            receives=ours_direction.receives and their_direction.sends,
        )
        return AudioSession(
            codec=codec,
            telephone_event_pt=event.payload_type if event is not None else None,
            remote_address=remote.address,
            remote_port=theirs.port,
            ptime=theirs.ptime or 20,
            direction=direction,
            media_index=index,
        )
    raise NotAcceptableHere("the answer accepts no audio codec we offered")
