"""RFC 4733 (formerly RFC 2833) telephone-events: the payload, a receiver, a sender.

An event is identified by its RTP timestamp: every packet of one key press carries the
timestamp of the press's start, with a growing duration, and the last one has the E bit set and
is sent three times. So the receiver's rule is "one digit per timestamp", which makes the end
retransmissions, lost start packets and a key pressed twice in a row all come out right.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from enum import Enum

from telephony.media.errors import DtmfParseError
from telephony.media.rtp import RtpPacket, ts_delta

DIGITS = "0123456789*#ABCD"  # event codes 0..15 in order (RFC 4733 section 3.2)
DEFAULT_PAYLOAD_TYPE = 101  # the dynamic type most PBXs offer; the SDP decides the real one
_PAYLOAD = struct.Struct("!BBH")
MAX_DURATION = 0xFFFF


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool = False
    volume: int = 10  # -dBm0, 0..63
    duration: int = 0  # RTP timestamp units since the event's start

    def to_bytes(self) -> bytes:
        if not 0 <= self.event <= 255:
            raise ValueError(f"event code {self.event} does not fit 0..255")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} does not fit 0..63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"duration {self.duration} does not fit 16 bits")
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    """Parse the first (usually only) event block; the R bit is ignored as RFC 4733 requires."""
    if len(payload) < _PAYLOAD.size:
        raise DtmfParseError(f"telephone-event payload of {len(payload)} bytes, need 4")
    event, flags, duration = _PAYLOAD.unpack_from(payload)
    return TelephoneEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


def digit_to_event(digit: str) -> int:
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return index


# --- receiving ----------------------------------------------------------------------------


class ReportAt(Enum):
    START = "start"  # report on the first packet of an event: lowest latency
    END = "end"  # report when the event ends: the duration is known


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    digit: str
    timestamp: int  # RTP timestamp of the event's start: its identity
    duration: int  # RTP timestamp units; the last seen if the end never arrived


class DtmfReceiver:
    """Turns telephone-event packets into digits, one per event.

    Feed it the telephone-event packets (`receive`), and call `handle_timeout(now)` at
    `next_deadline()`: an event whose end packets were all lost is reported after
    `end_timeout` seconds without packets, or at once when the next event starts.
    """

    def __init__(
        self,
        *,
        report_at: ReportAt = ReportAt.END,
        end_timeout: float = 0.5,
        straggler_window: int = 5 * 8000,
    ) -> None:
        self.report_at = report_at
        self.end_timeout = end_timeout
        # A packet up to this many timestamp units older than the latest event is a delayed
        # packet of an earlier press; anything older means the sender's clock jumped.
        self.straggler_window = straggler_window
        self._ssrc: int | None = None
        self._current: _Event | None = None
        # Timestamps of recent events, so a retransmitted end packet that shows up after the
        # next event began is not taken for a new press.
        self._recent: deque[int] = deque(maxlen=8)
        self._latest: int | None = None

    def receive(self, packet: RtpPacket, now: float) -> list[DtmfDigit]:
        """Raises `DtmfParseError` for a malformed payload (the caller counts and drops it)."""
        event = parse_telephone_event(packet.payload)
        timestamp = packet.timestamp
        reported: list[DtmfDigit] = []
        if packet.ssrc != self._ssrc:
            # A new stream (transfer, re-INVITE): its timestamps share nothing with the old one.
            reported = self._finish_unended()
            self._ssrc = packet.ssrc
            self._recent.clear()
            self._latest = None
            self._current = None
        if timestamp in self._recent:
            self._update_current(timestamp, event, now)
            return reported + self._report_if_ended(timestamp, event)
        if self._latest is not None and -self.straggler_window <= ts_delta(self._latest, timestamp) < 0:
            return reported
        reported += self._finish_unended()
        self._latest = timestamp
        self._recent.append(timestamp)
        if event.digit is None:
            # Flash and other non-digit events occupy the timestamp but produce no digit.
            self._current = _Event(timestamp, event, last_seen=now, reported=True)
            return reported
        self._current = _Event(timestamp, event, last_seen=now, reported=False)
        if self.report_at is ReportAt.START or event.end:
            reported.append(self._report(self._current))
        return reported

    def next_deadline(self) -> float | None:
        current = self._current
        if current is None or current.reported:
            return None
        return current.last_seen + self.end_timeout

    def handle_timeout(self, now: float) -> list[DtmfDigit]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        return self._finish_unended()

    def _update_current(self, timestamp: int, event: TelephoneEvent, now: float) -> None:
        current = self._current
        if current is not None and current.timestamp == timestamp:
            current.last_seen = now
            current.event = event if event.duration >= current.event.duration else current.event

    def _report_if_ended(self, timestamp: int, event: TelephoneEvent) -> list[DtmfDigit]:
        current = self._current
        if current is None or current.timestamp != timestamp or current.reported or not event.end:
            return []
        return [self._report(current)]

    def _finish_unended(self) -> list[DtmfDigit]:
        current = self._current
        if current is None or current.reported:
            return []
        return [self._report(current)]

    @staticmethod
    def _report(current: _Event) -> DtmfDigit:
        current.reported = True
        digit = current.event.digit
        assert digit is not None  # non-digit events are created already reported
        return DtmfDigit(digit, current.timestamp, current.event.duration)


@dataclass(slots=True)
class _Event:
    timestamp: int
    event: TelephoneEvent
    last_seen: float
    reported: bool


# --- sending ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DtmfPacket:
    send_at: float  # seconds, on the caller's clock
    timestamp: int  # RTP timestamp: the event's start, the same for every packet
    marker: bool
    payload: bytes


def dtmf_packets(
    digit: str,
    *,
    start_time: float,
    timestamp: int,
    duration: float = 0.1,
    clock_rate: int = 8000,
    update_interval: float = 0.05,
    end_packets: int = 3,
    volume: int = 10,
) -> list[DtmfPacket]:
    """The packets for one key press, in send order.

    The first carries the marker bit; an update follows every `update_interval` with the
    duration so far (never zero: some receivers drop zero-duration events); then the end packet
    is sent `end_packets` times, `update_interval` apart, as RFC 4733 section 2.5.1.4 advises.
    """
    event = digit_to_event(digit)
    total = min(max(1, round(duration * clock_rate)), MAX_DURATION)
    step = max(1, round(update_interval * clock_rate))
    packets: list[DtmfPacket] = []
    elapsed = 0
    while elapsed < total:
        # A packet covers the interval it opens, so its duration runs to the next update.
        reported = min(elapsed + step, total)
        payload = TelephoneEvent(event, end=False, volume=volume, duration=reported).to_bytes()
        packets.append(DtmfPacket(start_time + elapsed / clock_rate, timestamp, not packets, payload))
        elapsed += step
    end_payload = TelephoneEvent(event, end=True, volume=volume, duration=total).to_bytes()
    end_time = start_time + total / clock_rate
    for i in range(end_packets):
        packets.append(DtmfPacket(end_time + i * update_interval, timestamp, False, end_payload))
    return packets
