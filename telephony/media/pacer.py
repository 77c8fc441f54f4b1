"""The outgoing RTP stream of one call, as a deadline-driven state machine (no clock inside).

Frame n is due at `start_time + n * 20 ms` and carries timestamp `first_timestamp + n * 160`
(at an 8000 Hz RTP clock): both derive from n, so a late tick never makes the stream drift, and
the timestamp always tells the receiver how much real time passed, even across a DTMF event or
skipped frames. The asyncio layer only does `loop.call_at(pacer.next_deadline(), ...)` and
sends whatever `due(now)` returns.

What goes in each slot, in order of precedence:
1. the packets of a DTMF event in progress (audio waits until its last end packet is out);
2. the next 20 ms of queued playback, PCM at the codec's sample rate;
3. encoded silence, so the stream never stops: PBXs treat a silent stream as a dead call, and
   NAT bindings expire without traffic.

The marker bit is set on the first packet of the stream and on the first audio packet of each
talkspurt: when playback starts after silence, after a DTMF event, and after skipped frames
(where the receiver should re-sync its playout).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

from telephony.media.codecs import FRAME_DURATION, Codec
from telephony.media.dtmf import DEFAULT_PAYLOAD_TYPE, DtmfPacket, digit_to_event, dtmf_packets
from telephony.media.errors import CodecError
from telephony.media.rtp import build_simple_rtp, seq_add, ts_add


@dataclass(slots=True)
class _Playback:
    tag: int
    pcm: bytes
    offset: int = 0


@dataclass(frozen=True, slots=True)
class _DtmfRequest:
    tag: int
    digit: str
    duration: float


class Pacer:
    def __init__(
        self,
        codec: Codec,
        *,
        start_time: float,
        dtmf_payload_type: int = DEFAULT_PAYLOAD_TYPE,
        rng: random.Random | None = None,
        max_catch_up: int = 5,
    ) -> None:
        """`max_catch_up`: when the caller is this many frames behind (the event loop stalled),
        the missed slots are skipped rather than sent as a burst of stale audio."""
        rng = rng or random.SystemRandom()
        self.codec = codec
        self.dtmf_payload_type = dtmf_payload_type
        self.max_catch_up = max_catch_up
        self.ssrc = rng.getrandbits(32)
        self.first_sequence = rng.getrandbits(16)
        self.first_timestamp = rng.getrandbits(32)
        self.start_time = start_time
        self.packets_sent = 0
        self._sequence = self.first_sequence
        self._frame = 0  # index of the next audio slot
        self._next_tag = 1
        self._playback: deque[_Playback] = deque()
        self._dtmf_requests: deque[_DtmfRequest] = deque()
        self._dtmf_packets: deque[DtmfPacket] = deque()
        self._dtmf_tag = 0
        self._finished: list[int] = []
        self._marker_pending = True
        self._was_playing = False
        self._muted = False

    # --- what to send -------------------------------------------------------------------

    def play(self, pcm: bytes) -> int:
        """Queue PCM (codec sample rate); returns a tag reported by `pop_finished` once sent."""
        if len(pcm) % 2:
            raise CodecError(f"PCM must be whole 16-bit samples, got {len(pcm)} bytes")
        tag = self._new_tag()
        if pcm:
            self._playback.append(_Playback(tag, bytes(pcm)))
        else:
            self._finished.append(tag)
        return tag

    def stop_playback(self) -> list[int]:
        """Barge-in: drop all queued audio at once. Returns the tags that will never finish."""
        cancelled = [item.tag for item in self._playback]
        self._playback.clear()
        return cancelled

    def send_dtmf(self, digit: str, *, duration: float = 0.1) -> int:
        """Queue an RFC 4733 event; it starts at the next frame slot. Returns its tag."""
        digit_to_event(digit)  # refuse a bad digit now, not mid-stream
        tag = self._new_tag()
        self._dtmf_requests.append(_DtmfRequest(tag, digit, duration))
        return tag

    def pop_finished(self) -> list[int]:
        """Tags of playbacks and DTMF events fully sent since the last call."""
        finished, self._finished = self._finished, []
        return finished

    @property
    def is_playing(self) -> bool:
        return bool(self._playback)

    # --- when ---------------------------------------------------------------------------

    def set_muted(self, muted: bool) -> None:
        """On hold (RFC 3264 §8.4) nothing is sent, but the clock and any playback run on, so
        the agent never stalls; the first packet after it starts a new talkspurt (marker)."""
        if self._muted and not muted:
            self._marker_pending = True
        self._muted = muted

    @property
    def muted(self) -> bool:
        return self._muted

    def next_deadline(self) -> float:
        if self._dtmf_packets:
            return self._dtmf_packets[0].send_at
        return self._slot_time(self._frame)

    def due(self, now: float) -> list[bytes]:
        """Every packet whose time has come, in send order."""
        out: list[bytes] = []
        while True:
            if self._dtmf_packets:
                if self._dtmf_packets[0].send_at > now:
                    return out
                if packet := self._next_dtmf_packet():
                    out.append(packet)
                continue
            deadline = self._slot_time(self._frame)
            if deadline > now:
                return out
            behind = int((now - deadline) / FRAME_DURATION)
            if behind >= self.max_catch_up:
                self._frame += behind
                self._marker_pending = True
                continue
            if self._dtmf_requests:
                self._start_dtmf(deadline)
                continue
            if packet := self._next_audio_packet():
                out.append(packet)
            self._frame += 1

    # --- internals ----------------------------------------------------------------------

    def _slot_time(self, frame: int) -> float:
        return self.start_time + frame * FRAME_DURATION

    def _slot_timestamp(self, frame: int) -> int:
        return ts_add(self.first_timestamp, frame * self.codec.timestamp_step)

    def _new_tag(self) -> int:
        tag = self._next_tag
        self._next_tag += 1
        return tag

    def _start_dtmf(self, deadline: float) -> None:
        request = self._dtmf_requests.popleft()
        self._dtmf_tag = request.tag
        self._dtmf_packets.extend(
            dtmf_packets(
                request.digit,
                start_time=deadline,
                timestamp=self._slot_timestamp(self._frame),
                duration=request.duration,
                clock_rate=self.codec.rtp_clock_rate,
            )
        )

    def _next_dtmf_packet(self) -> bytes:
        planned = self._dtmf_packets.popleft()
        data = self._build(self.dtmf_payload_type, planned.marker, planned.timestamp, planned.payload)
        if not self._dtmf_packets:
            self._finished.append(self._dtmf_tag)
            # Audio resumes in the first slot after the last end packet, as a new talkspurt.
            elapsed = (planned.send_at - self.start_time) / FRAME_DURATION
            self._frame = max(self._frame, math.floor(elapsed) + 1)
            self._marker_pending = True
        return data

    def _next_audio_packet(self) -> bytes:
        frame_bytes = self.codec.frame_bytes
        if self._playback:
            item = self._playback[0]
            pcm = item.pcm[item.offset : item.offset + frame_bytes]
            item.offset += frame_bytes
            if len(pcm) < frame_bytes:
                pcm += bytes(frame_bytes - len(pcm))
            if item.offset >= len(item.pcm):
                self._playback.popleft()
                self._finished.append(item.tag)
            marker = self._marker_pending or not self._was_playing
            self._was_playing = True
        else:
            pcm = bytes(frame_bytes)
            marker = self._marker_pending
            self._was_playing = False
        self._marker_pending = False
        return self._build(
            self.codec.payload_type, marker, self._slot_timestamp(self._frame), self.codec.encode(pcm)
        )

    def _build(self, payload_type: int, marker: bool, timestamp: int, payload: bytes) -> bytes:
        if self._muted:
            return b""  # not sent, so no sequence number used: the receiver sees no loss
        data = build_simple_rtp(payload_type, marker, self._sequence, timestamp, self.ssrc, payload)
        self._sequence = seq_add(self._sequence, 1)
        self.packets_sent += 1
        return data
