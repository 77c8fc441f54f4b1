"""A jitter buffer keyed by RTP sequence number, and simple packet loss concealment.

Playout follows the sender's timestamps on a timeline: a frame is due at
`anchor_time + (timestamp - anchor_timestamp) / clock_rate`. `pop(now)` hands out every frame
that is due, in sequence order, with a `Lost` in place of each missing one once a later packet
proves the gap is a loss (not a pause in sending). A packet that arrives after its slot was
concealed is late and dropped.

The margin of a packet is how long before its due time it arrived. The buffer steers the
timeline so that the largest margin over each `adapt_interval` (that of the packets that
crossed the network fastest) stays near `target_delay`; packets delayed by up to the target
more than those then still arrive in time:

- an underrun (a packet arrives past its due time with nothing buffered: the network delay
  grew) moves the timeline later at once, so that packet plays now rather than being lost;
- at the end of each interval the timeline moves towards the target: later by the whole error,
  earlier by at most one frame (the consumer then gets two frames in one tick; for speech
  recognition that is harmless, and it keeps latency from ratcheting up after a delay spike).

With `adaptive=True` the target itself follows the network: a late packet raises it by a frame
(at most once per interval), and a quiet interval lets it sink towards `jitter_multiplier` times
the RFC 3550 jitter estimate, within [min_delay, max_delay]. With `adaptive=False` it stays at
`delay`.
"""

from __future__ import annotations

import audioop
from collections import deque
from dataclasses import dataclass

from telephony.media.rtp import InterarrivalJitter, RtpPacket, extend_seq, ts_add, ts_delta

MAX_DROPOUT = 3000  # sequence jump treated as a restarted stream (RFC 3550 A.1)
MAX_MISORDER = 100  # further behind than this is not reordering but a restart
_RESTART_CONFIRMATIONS = 5  # far-behind packets in a row that confirm a restart


@dataclass(frozen=True, slots=True)
class Played:
    packet: RtpPacket


@dataclass(frozen=True, slots=True)
class Lost:
    sequence: int  # 16-bit, as it would have been on the wire
    timestamp: int  # estimated from the frame size


JitterOutput = Played | Lost


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    played: int = 0
    lost: int = 0
    late: int = 0
    duplicates: int = 0
    overflowed: int = 0
    resyncs: int = 0


class JitterBuffer:
    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        frame_duration: float = 0.02,
        delay: float = 0.06,
        min_delay: float = 0.04,
        max_delay: float = 0.2,
        adaptive: bool = True,
        capacity: int = 64,
        jitter_multiplier: float = 3.0,
        adapt_interval: float = 1.0,
    ) -> None:
        if not min_delay <= delay <= max_delay:
            raise ValueError("need min_delay <= delay <= max_delay")
        self.clock_rate = clock_rate
        self.frame_duration = frame_duration
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.adaptive = adaptive
        self.capacity = capacity
        self.jitter_multiplier = jitter_multiplier
        self.adapt_interval = adapt_interval
        self.target_delay = delay
        self.stats = JitterStats()
        self.jitter = InterarrivalJitter(clock_rate)
        self._packets: dict[int, RtpPacket] = {}  # extended sequence -> packet
        self._ssrc: int | None = None
        self._next: int = 0  # extended sequence to play next
        self._highest: int = 0  # highest extended sequence seen
        self._last_timestamp: int = 0  # of the last frame played or concealed
        self._frame_ticks = round(frame_duration * clock_rate)
        self._anchor_time = 0.0
        self._anchor_timestamp = 0
        self._last_pushed_timestamp = -1
        self._last_growth = float("-inf")
        self._playing = False  # whether anything was handed out since the stream (re)started
        self._window_start = 0.0
        self._window_max_margin = float("-inf")
        self._late_in_window = False
        self._far_behind = 0
        # Sequences we concealed recently: a packet arriving for one of them is late, while
        # anything else behind the playout point is a duplicate.
        self._concealed: deque[int] = deque(maxlen=2 * capacity)

    def __len__(self) -> int:
        return len(self._packets)

    # --- input ----------------------------------------------------------------------------

    def push(self, packet: RtpPacket, arrival_time: float) -> None:
        self.stats.received += 1
        if packet.ssrc != self._ssrc:
            self._restart(packet, arrival_time)
            return
        seq = extend_seq(self._highest, packet.sequence)
        if seq - self._next >= MAX_DROPOUT:
            self._restart(packet, arrival_time)
            return
        if seq < self._next and not self._playing and seq >= self._next - MAX_MISORDER:
            # Reordered ahead of the stream's first packet, before playout began: start earlier.
            self._next = seq
            self._last_timestamp = ts_add(packet.timestamp, -self._frame_ticks)
        if seq < self._next:
            self._behind_playout(packet, seq, arrival_time)
            return
        self._far_behind = 0
        if seq in self._packets:
            self.stats.duplicates += 1
            return
        # Packets repeating the previous timestamp (RFC 4733 event updates) were sent later than
        # their timestamp says: they must not steer the timeline.
        if packet.timestamp != self._last_pushed_timestamp:
            self._last_pushed_timestamp = packet.timestamp
            self.jitter.update(arrival_time, packet.timestamp)
            self._steer(packet.timestamp, arrival_time)
        self._learn_frame_size(seq, packet)
        self._packets[seq] = packet
        self._highest = max(self._highest, seq)
        if len(self._packets) > self.capacity:
            self._drop_oldest()

    def _behind_playout(self, packet: RtpPacket, seq: int, arrival_time: float) -> None:
        if seq in self._concealed:
            self.stats.late += 1
            self._concealed.remove(seq)
            self._late_in_window = True
            if self.adaptive and arrival_time - self._last_growth >= self.adapt_interval:
                step = min(self.frame_duration, self.max_delay - self.target_delay)
                self.target_delay += step
                self._anchor_time += step
                self._last_growth = arrival_time
            return
        if seq < self._next - MAX_MISORDER:
            self._far_behind += 1
            if self._far_behind >= _RESTART_CONFIRMATIONS:
                # The sender restarted its sequence without changing SSRC.
                self._restart(packet, arrival_time)
                return
        self.stats.duplicates += 1

    def _steer(self, timestamp: int, arrival_time: float) -> None:
        margin = self._due(timestamp) - arrival_time
        if margin < 0 and not self._packets:
            self._anchor_time -= margin
            self._start_window(arrival_time)
            margin = 0.0
        self._window_max_margin = max(self._window_max_margin, margin)
        if arrival_time - self._window_start >= self.adapt_interval:
            self._end_window(arrival_time)

    def _end_window(self, now: float) -> None:
        if self.adaptive and not self._late_in_window:
            wanted = max(self.min_delay, self.jitter_multiplier * self.jitter.seconds)
            self.target_delay = min(self.max_delay, max(wanted, self.target_delay - self.frame_duration))
        error = self._window_max_margin - self.target_delay
        if error > self.frame_duration / 2:
            self._anchor_time -= min(error, self.frame_duration)
        elif error < -self.frame_duration / 2:
            self._anchor_time -= error
        self._start_window(now)

    def _start_window(self, now: float) -> None:
        self._window_start = now
        self._window_max_margin = float("-inf")
        self._late_in_window = False

    def _restart(self, packet: RtpPacket, arrival_time: float) -> None:
        if self._ssrc is not None:
            self.stats.resyncs += 1
        self._ssrc = packet.ssrc
        self._packets.clear()
        self._concealed.clear()
        self._far_behind = 0
        self._playing = False
        self._next = self._highest = packet.sequence
        self._packets[packet.sequence] = packet
        self._last_timestamp = ts_add(packet.timestamp, -self._frame_ticks)
        self.jitter = InterarrivalJitter(self.clock_rate)
        self.jitter.update(arrival_time, packet.timestamp)
        self._last_pushed_timestamp = packet.timestamp
        self._anchor_time = arrival_time + self.target_delay
        self._anchor_timestamp = packet.timestamp
        self._start_window(arrival_time)

    def _learn_frame_size(self, seq: int, packet: RtpPacket) -> None:
        # The peer's ptime may not be ours; consecutive audio packets tell us the real one.
        previous = self._packets.get(seq - 1)
        if previous is not None and previous.payload_type == packet.payload_type:
            ticks = ts_delta(previous.timestamp, packet.timestamp)
            if 0 < ticks <= self.clock_rate:
                self._frame_ticks = ticks

    def _drop_oldest(self) -> None:
        oldest = min(self._packets)
        del self._packets[oldest]
        self.stats.overflowed += 1
        self.stats.lost += oldest - self._next  # the gap before it will never be played
        self._next = oldest + 1

    # --- output ---------------------------------------------------------------------------

    def _due(self, timestamp: int) -> float:
        return self._anchor_time + ts_delta(self._anchor_timestamp, timestamp) / self.clock_rate

    def next_deadline(self) -> float | None:
        """When `pop` will next have something to hand out, or None if it waits for input."""
        head = self._packets.get(self._next)
        if head is not None:
            return self._due(head.timestamp)
        if self._packets:
            return self._due(ts_add(self._last_timestamp, self._frame_ticks))
        return None

    def pop(self, now: float) -> list[JitterOutput]:
        out: list[JitterOutput] = []
        while self._packets:
            head = self._packets.get(self._next)
            if head is not None:
                if self._due(head.timestamp) > now:
                    break
                del self._packets[self._next]
                out.append(Played(head))
                self.stats.played += 1
                self._last_timestamp = head.timestamp
            else:
                # A later packet is buffered, so the gap is a loss: conceal it when due.
                estimated = ts_add(self._last_timestamp, self._frame_ticks)
                if self._due(estimated) > now:
                    break
                out.append(Lost(self._next & 0xFFFF, estimated))
                self.stats.lost += 1
                self._concealed.append(self._next)
                self._last_timestamp = estimated
            self._next += 1
        if out:
            self._playing = True
        return out


class Concealer:
    """Packet loss concealment for decoded PCM: repeat the last good frame, quieter each time,
    then fall back to silence, so a lost packet sounds like a short fade, not a click."""

    def __init__(self, frame_bytes: int, *, attenuation: float = 0.5, max_repeats: int = 3) -> None:
        self.frame_bytes = frame_bytes
        self.attenuation = attenuation
        self.max_repeats = max_repeats
        self._last = bytes(frame_bytes)
        self._repeats = 0

    def good(self, pcm: bytes) -> bytes:
        """Record a frame that was received; returns it unchanged."""
        self._last = pcm
        self._repeats = 0
        return pcm

    def conceal(self) -> bytes:
        """A stand-in for one lost frame."""
        self._repeats += 1
        if self._repeats > self.max_repeats:
            return bytes(self.frame_bytes)
        self._last = audioop.mul(self._last, 2, self.attenuation)
        return self._last
