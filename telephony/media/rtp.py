"""RTP and RTCP wire formats (RFC 3550), sans-I/O.

`parse_rtp` validates everything a peer controls before trusting it, so any datagram from the
network either becomes an `RtpPacket` or raises `RtpParseError`. Sequence numbers (16 bits) and
timestamps (32 bits) wrap; the helpers here do the modular arithmetic so callers never compare
raw values with `<`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from telephony.media.errors import RtpParseError

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32

_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension: a 16-bit profile id and data whose length is a multiple of 4."""

    profile: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    # Bytes of padding to append when building; parsing strips padding and records its size here.
    padding: int = 0

    def to_bytes(self) -> bytes:
        return build_rtp(self)


def build_rtp(packet: RtpPacket) -> bytes:
    """Serialise a packet, checking each field fits its width (a bug here is ours, not the peer's)."""
    _check_range("payload_type", packet.payload_type, 0x7F)
    _check_range("sequence", packet.sequence, 0xFFFF)
    _check_range("timestamp", packet.timestamp, 0xFFFFFFFF)
    _check_range("ssrc", packet.ssrc, 0xFFFFFFFF)
    if len(packet.csrcs) > 15:
        raise ValueError("at most 15 CSRCs fit in an RTP header")
    if not 0 <= packet.padding <= 255:
        raise ValueError("padding must be 0..255 bytes")
    first = (RTP_VERSION << 6) | (len(packet.csrcs) & 0x0F)
    if packet.padding:
        first |= 0x20
    if packet.extension is not None:
        first |= 0x10
    second = (0x80 if packet.marker else 0) | packet.payload_type
    parts = [_HEADER.pack(first, second, packet.sequence, packet.timestamp, packet.ssrc)]
    parts.extend(struct.pack("!I", csrc) for csrc in packet.csrcs)
    if packet.extension is not None:
        ext = packet.extension
        if len(ext.data) % 4:
            raise ValueError("extension data must be a multiple of 4 bytes")
        parts.append(_EXTENSION_HEADER.pack(ext.profile, len(ext.data) // 4))
        parts.append(ext.data)
    parts.append(packet.payload)
    if packet.padding:
        parts.append(bytes(packet.padding - 1) + bytes([packet.padding]))
    return b"".join(parts)


def build_simple_rtp(
    payload_type: int, marker: bool, sequence: int, timestamp: int, ssrc: int, payload: bytes
) -> bytes:
    """The common case (no CSRC, extension or padding) without building an `RtpPacket`: the
    pacer sends 50 of these per second per call. Fields must already be in range."""
    return _HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence, timestamp, ssrc) + payload


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram; raise `RtpParseError` for anything malformed."""
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpParseError(f"RTP packet of {size} bytes is shorter than the 12-byte header")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpParseError(f"RTP version {first >> 6}, expected 2")
    offset = RTP_HEADER_SIZE + 4 * (first & 0x0F)
    if offset > size:
        raise RtpParseError("CSRC list runs past the end of the packet")
    csrcs = struct.unpack_from(f"!{first & 0x0F}I", data, RTP_HEADER_SIZE)

    end = size
    padding = 0
    if first & 0x20:
        padding = data[-1]
        # The count includes itself, so 0 is invalid; it may not eat into the header.
        if padding == 0 or end - padding < offset:
            raise RtpParseError(f"invalid RTP padding count {padding}")
        end -= padding

    extension = None
    if first & 0x10:
        if offset + 4 > end:
            raise RtpParseError("RTP extension header runs past the end of the packet")
        profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
        offset += 4
        if offset + 4 * words > end:
            raise RtpParseError("RTP extension data runs past the end of the packet")
        extension = RtpExtension(profile, bytes(data[offset : offset + 4 * words]))
        offset += 4 * words

    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrcs=csrcs,
        extension=extension,
        padding=padding,
    )


def looks_like_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192..223 sit where RTP's marker+PT would be."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def _check_range(name: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise ValueError(f"{name}={value} does not fit 0..{maximum}")


# --- modular arithmetic -------------------------------------------------------------------


def seq_delta(older: int, newer: int) -> int:
    """Signed distance from `older` to `newer` in 16-bit sequence space, in [-32768, 32767]."""
    return ((newer - older + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(older: int, newer: int) -> int:
    """Signed distance from `older` to `newer` in 32-bit timestamp space."""
    return ((newer - older + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def seq_add(sequence: int, count: int) -> int:
    return (sequence + count) & 0xFFFF


def ts_add(timestamp: int, ticks: int) -> int:
    return (timestamp + ticks) & 0xFFFFFFFF


def extend_seq(reference: int, sequence: int) -> int:
    """Unwrap a 16-bit sequence number to the extended (unbounded) value nearest `reference`.

    `reference` is an already-extended number, e.g. the highest seen so far; the result is
    monotonic across wraps, which lets buffers key and sort packets with plain integers.
    """
    return reference + seq_delta(reference & 0xFFFF, sequence)


class InterarrivalJitter:
    """RFC 3550 A.8 interarrival jitter, kept in RTP timestamp units.

    Time is passed in (seconds, any monotonic origin); packets that repeat the previous
    timestamp (RFC 4733 event updates, video frames) are skipped, since their spacing is not
    network jitter.
    """

    __slots__ = ("clock_rate", "jitter", "_last_arrival", "_last_timestamp")

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.jitter = 0.0
        self._last_arrival = 0.0
        self._last_timestamp: int | None = None

    def update(self, arrival_time: float, timestamp: int) -> None:
        if timestamp == self._last_timestamp:
            return
        if self._last_timestamp is not None:
            # D(i,j) = (Rj - Ri) - (Sj - Si): the change in transit time, in timestamp units.
            d = (arrival_time - self._last_arrival) * self.clock_rate - ts_delta(
                self._last_timestamp, timestamp
            )
            self.jitter += (abs(d) - self.jitter) / 16.0
        self._last_arrival = arrival_time
        self._last_timestamp = timestamp

    @property
    def seconds(self) -> float:
        return self.jitter / self.clock_rate


# --- RTCP (parsing only: enough for statistics and noticing BYE) -----------------------------

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

_RTCP_HEADER = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SENDER_INFO = struct.Struct("!IIIII")


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # fixed point /256
    cumulative_lost: int  # signed 24-bit
    highest_sequence: int  # extended
    jitter: int  # RTP timestamp units
    last_sr: int
    delay_since_last_sr: int  # 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP format
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str = ""


RtcpPacket = SenderReport | ReceiverReport | Bye


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram; SDES, APP and unknown types are skipped by length."""
    packets: list[RtcpPacket] = []
    offset = 0
    if len(data) < 4:
        raise RtpParseError("RTCP datagram shorter than one header")
    while offset < len(data):
        if offset + 4 > len(data):
            raise RtpParseError("truncated RTCP header")
        first, packet_type, words = _RTCP_HEADER.unpack_from(data, offset)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTCP version {first >> 6}, expected 2")
        end = offset + 4 * (words + 1)
        if end > len(data):
            raise RtpParseError("RTCP length runs past the end of the datagram")
        body_end = end
        if first & 0x20:
            padding = data[end - 1]
            if padding == 0 or end - padding < offset + 4:
                raise RtpParseError(f"invalid RTCP padding count {padding}")
            body_end -= padding
        count = first & 0x1F
        body = data[offset + 4 : body_end]
        if packet_type == RTCP_SR:
            packets.append(_parse_sender_report(body, count))
        elif packet_type == RTCP_RR:
            packets.append(_parse_receiver_report(body, count))
        elif packet_type == RTCP_BYE:
            packets.append(_parse_bye(body, count))
        offset = end
    return packets


def _parse_report_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    if offset + count * _REPORT_BLOCK.size > len(body):
        raise RtpParseError("RTCP report blocks run past the packet")
    blocks = []
    for i in range(count):
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(
            body, offset + i * _REPORT_BLOCK.size
        )
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        blocks.append(ReportBlock(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _parse_sender_report(body: bytes, count: int) -> SenderReport:
    if len(body) < 4 + _SENDER_INFO.size:
        raise RtpParseError("RTCP SR shorter than its sender info")
    (ssrc,) = struct.unpack_from("!I", body)
    ntp_high, ntp_low, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body, 4)
    blocks = _parse_report_blocks(body, 4 + _SENDER_INFO.size, count)
    return SenderReport(ssrc, (ntp_high << 32) | ntp_low, rtp_ts, packets, octets, blocks)


def _parse_receiver_report(body: bytes, count: int) -> ReceiverReport:
    if len(body) < 4:
        raise RtpParseError("RTCP RR without its SSRC")
    (ssrc,) = struct.unpack_from("!I", body)
    return ReceiverReport(ssrc, _parse_report_blocks(body, 4, count))


def _parse_bye(body: bytes, count: int) -> Bye:
    if len(body) < 4 * count:
        raise RtpParseError("RTCP BYE SSRC list runs past the packet")
    ssrcs = struct.unpack_from(f"!{count}I", body)
    reason = ""
    rest = body[4 * count :]
    if rest:
        length = rest[0]
        if 1 + length > len(rest):
            raise RtpParseError("RTCP BYE reason runs past the packet")
        reason = rest[1 : 1 + length].decode("utf-8", errors="replace")
    return Bye(ssrcs, reason)
