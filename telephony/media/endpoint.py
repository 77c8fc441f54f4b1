"""The thin asyncio layer: RTP ports, and one RTP session per call.

Everything that decides anything lives in the sans-I/O modules (`pacer`, `jitter`, `dtmf`,
`rtp`, `codecs`); this module owns the sockets and is the only place time enters, through
`loop.time()` and `loop.call_at`.

Symmetric RTP (RFC 4961), kept simple:
- until the peer's first valid packet arrives (parses as RTP, carries a negotiated payload
  type), we send to the address from SDP (`remote`, or `set_remote` after a re-INVITE);
- the source of that first packet is latched: from then on we send there, which is what the
  caller's NAT expects, and drop packets from any other source;
- if the latched source has been quiet for `relatch_after` seconds, a valid packet from a new
  source latches again (the PBX moved the media, or a NAT rebinding changed the port);
- `set_remote` forgets the latch.
Any source may win the first latch, as with Asterisk's learning mode; the SIP layer's SDP and
dialog state are the real authentication of a call.

RTCP: the session binds RTP+1 and parses SR/RR/BYE into its stats; it sends no RTCP yet.
"""

from __future__ import annotations

import asyncio
import errno
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from telephony.media.codecs import Codec, pcm_from_wav
from telephony.media.dtmf import DEFAULT_PAYLOAD_TYPE, DtmfDigit, DtmfReceiver, ReportAt
from telephony.media.errors import LocalMediaError, PeerMediaError, PortsExhausted
from telephony.media.jitter import Concealer, JitterBuffer, Played
from telephony.media.pacer import Pacer
from telephony.media.rtp import Bye, InterarrivalJitter, RtpPacket, parse_rtcp, parse_rtp

Address = tuple[str, int]
COMFORT_NOISE_PAYLOAD_TYPE = 13  # RFC 3389: played as silence, but it keeps sequence numbers whole


class RtpPortAllocator:
    """Even RTP ports (RTCP on port + 1) from [min_port, max_port], freed ports reused last.

    Reusing the least recently freed port keeps stray packets of a finished call from landing
    in the next call. Pure bookkeeping: `RtpSession.start` skips ports another process holds.
    """

    def __init__(self, min_port: int = 10000, max_port: int = 60000) -> None:
        first = min_port + (min_port % 2)
        if first + 1 > max_port:
            raise ValueError(f"no even port with a following RTCP port in {min_port}..{max_port}")
        self.min_port = min_port
        self.max_port = max_port
        self._free: deque[int] = deque(range(first, max_port, 2))
        self._in_use: set[int] = set()

    def allocate(self) -> int:
        if not self._free:
            raise PortsExhausted(
                f"all {len(self._in_use)} RTP ports in {self.min_port}..{self.max_port} are in use"
            )
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        if port in self._in_use:
            self._in_use.remove(port)
            self._free.append(port)

    @property
    def available(self) -> int:
        return len(self._free)

    @property
    def in_use(self) -> int:
        return len(self._in_use)


@dataclass(slots=True)
class MediaStats:
    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    packets_lost: int = 0  # concealed by the jitter buffer
    packets_late: int = 0  # arrived after their slot was concealed
    duplicates: int = 0
    malformed: int = 0  # RTP, RTCP or telephone-event that failed to parse
    foreign: int = 0  # from a source other than the latched one
    unknown_payload: int = 0  # payload types we did not negotiate
    audio_dropped: int = 0  # frames lost because nobody read `caller_audio`
    jitter_ms: float = 0.0  # RFC 3550 A.8 interarrival jitter of the caller's audio
    rtcp_received: int = 0
    remote_bye: bool = False
    latched: Address | None = None


class RtpSession(asyncio.DatagramProtocol):
    """One call's media: decoded caller audio and DTMF in, paced audio and DTMF out.

    Construct, then `await session.start(host=..., allocator=...)`. Caller audio arrives in
    `caller_audio` as PCM frames at the codec's sample rate (lost packets concealed); digits in
    `dtmf_digits` (and `on_dtmf`, if given). The outgoing stream runs from `start()` on; while
    no destination is known (no SDP address, nothing latched) its packets are dropped.
    """

    def __init__(
        self,
        *,
        codec: Codec,
        remote: Address | None = None,
        dtmf_payload_type: int = DEFAULT_PAYLOAD_TYPE,
        jitter_buffer: JitterBuffer | None = None,
        report_dtmf_at: ReportAt = ReportAt.END,
        relatch_after: float = 2.0,
        audio_queue_frames: int = 500,
        on_dtmf: Callable[[DtmfDigit], None] | None = None,
        on_packet_sent: Callable[[bytes], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.codec = codec
        self.remote = remote
        self.dtmf_payload_type = dtmf_payload_type
        self.relatch_after = relatch_after
        self.caller_audio: asyncio.Queue[bytes] = asyncio.Queue(maxsize=audio_queue_frames)
        self.dtmf_digits: asyncio.Queue[str] = asyncio.Queue()
        self.local_address: Address | None = None
        self._on_dtmf = on_dtmf
        self._on_packet_sent = on_packet_sent
        self._rng = rng
        self._jitter = jitter_buffer or JitterBuffer(clock_rate=codec.rtp_clock_rate)
        self._concealer = Concealer(codec.frame_bytes)
        self._dtmf = DtmfReceiver(report_at=report_dtmf_at)
        self._arrival_jitter = InterarrivalJitter(codec.rtp_clock_rate)
        self._stats = MediaStats()
        self._silence = bytes(codec.frame_bytes)
        self._pacer: Pacer | None = None
        self._pending: dict[int, asyncio.Future[bool]] = {}
        self._latched: Address | None = None
        self._last_from_latched = 0.0
        self._remote_ssrc: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self._allocator: RtpPortAllocator | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._scheduled_for = 0.0
        self._open_sockets = 0
        self._closed = False
        self._sends = True

    # --- starting and closing ------------------------------------------------------------

    async def start(
        self,
        *,
        host: str,
        allocator: RtpPortAllocator | None = None,
        port: int | None = None,
        rtcp: bool = True,
    ) -> None:
        """Bind on `host` and start sending. The port comes from `allocator` (skipping ports
        another process holds) or is given; `port=0` picks an ephemeral port, without RTCP."""
        if self._loop is not None:
            raise LocalMediaError("session already started")
        loop = asyncio.get_running_loop()
        if allocator is not None:
            await self._bind_from(loop, host, allocator, rtcp=rtcp)
        elif port is not None:
            await self._bind(loop, host, port, rtcp=rtcp and port != 0)
        else:
            raise LocalMediaError("give an allocator or a port")
        self._loop = loop
        self._pacer = Pacer(
            self.codec, start_time=loop.time(), dtmf_payload_type=self.dtmf_payload_type, rng=self._rng
        )
        self._pacer.set_muted(not self._sends)
        self._schedule(self._pacer.next_deadline())

    async def _bind_from(
        self, loop: asyncio.AbstractEventLoop, host: str, allocator: RtpPortAllocator, *, rtcp: bool
    ) -> None:
        busy: list[int] = []
        try:
            for _ in range(allocator.available):
                port = allocator.allocate()
                try:
                    await self._bind(loop, host, port, rtcp=rtcp)
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        allocator.release(port)
                        raise
                    busy.append(port)  # another process has it; hand it back after trying others
                    continue
                self._allocator = allocator
                return
            raise PortsExhausted(f"every free RTP port on {host} is bound by another process")
        finally:
            for port in busy:
                allocator.release(port)

    async def _bind(self, loop: asyncio.AbstractEventLoop, host: str, port: int, *, rtcp: bool) -> None:
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._open_sockets += 1
        if rtcp:
            try:
                rtcp_transport, _ = await loop.create_datagram_endpoint(
                    lambda: _RtcpProtocol(self), local_addr=(host, port + 1)
                )
            except OSError:
                transport.close()
                raise
            self._open_sockets += 1
            self._rtcp_transport = rtcp_transport
        self._transport = transport
        self.local_address = transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        """Stop sending and settle every pending playback and DTMF as not played. The port goes
        back to the allocator once the sockets are closed, an iteration of the loop later."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for transport in (self._transport, self._rtcp_transport):
            if transport is not None:
                transport.close()
        for future in self._pending.values():
            if not future.done():
                future.set_result(False)
        self._pending.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    # --- what the call does ---------------------------------------------------------------

    def set_remote(self, remote: Address) -> None:
        """A new SDP address (re-INVITE): send there and learn the source again."""
        self.remote = remote
        self._latched = None

    def set_sending(self, sends: bool) -> None:
        """What the SDP lets us do: hold (sendonly/inactive offers, c=0.0.0.0) stops our stream."""
        self._sends = sends
        if self._pacer is not None:
            self._pacer.set_muted(not sends)

    def play(self, pcm: bytes) -> asyncio.Future[bool]:
        """Queue PCM at the codec's sample rate. The future is True once the last frame is sent,
        False if `stop_playback` or `close` came first."""
        return self._track(lambda pacer: pacer.play(pcm))

    async def play_file(self, path: str | Path) -> bool:
        """Play a PCM WAV file, converted to mono 16-bit at the codec's rate. Reading and
        converting happen in a worker thread, off the loop that paces every call."""
        pcm = await asyncio.to_thread(_load_wav, Path(path), self.codec.sample_rate)
        return await self.play(pcm)

    def stop_playback(self) -> None:
        """Barge-in: silence from the next frame on."""
        if self._pacer is not None:
            self._settle(self._pacer.stop_playback(), played=False)

    def send_dtmf(self, digit: str, *, duration: float = 0.1) -> asyncio.Future[bool]:
        """Send an RFC 4733 event; the future is True once its last end packet is sent."""
        return self._track(lambda pacer: pacer.send_dtmf(digit, duration=duration))

    @property
    def stats(self) -> MediaStats:
        jitter = self._jitter.stats
        return replace(
            self._stats,
            packets_lost=jitter.lost,
            packets_late=jitter.late,
            duplicates=jitter.duplicates,
            jitter_ms=1000 * self._arrival_jitter.jitter / self.codec.rtp_clock_rate,
            latched=self._latched,
        )

    def _track(self, start: Callable[[Pacer], int]) -> asyncio.Future[bool]:
        assert self._loop is not None and self._pacer is not None, "call start() first"
        future: asyncio.Future[bool] = self._loop.create_future()
        if self._closed:
            future.set_result(False)
        else:
            self._pending[start(self._pacer)] = future
        return future

    def _settle(self, tags: list[int], *, played: bool) -> None:
        for tag in tags:
            future = self._pending.pop(tag, None)
            if future is not None and not future.done():
                future.set_result(played)

    # --- the 20 ms tick -------------------------------------------------------------------

    def _schedule(self, deadline: float) -> None:
        dtmf_deadline = self._dtmf.next_deadline()
        if dtmf_deadline is not None and dtmf_deadline < deadline:
            deadline = dtmf_deadline
        assert self._loop is not None
        self._scheduled_for = deadline
        self._timer = self._loop.call_at(deadline, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None and self._pacer is not None
        # A timer with millisecond resolution (uvloop) may fire a hair before its deadline.
        now = max(self._loop.time(), self._scheduled_for)
        destination = self._latched or self.remote
        for data in self._pacer.due(now):
            if destination is not None and self._transport is not None:
                self._transport.sendto(data, destination)
                self._stats.packets_sent += 1
                self._stats.bytes_sent += len(data)
                if self._on_packet_sent is not None:
                    self._on_packet_sent(data)
        self._settle(self._pacer.pop_finished(), played=True)
        self._play_out(now)
        self._deliver_digits(self._dtmf.handle_timeout(now))
        if not self._closed:
            self._schedule(self._pacer.next_deadline())

    # --- receiving ------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:  # type: ignore[override]
        assert self._loop is not None
        now = self._loop.time()
        try:
            packet = parse_rtp(data)
        except PeerMediaError:
            self._stats.malformed += 1
            return
        payload_type = packet.payload_type
        if payload_type not in (self.codec.payload_type, self.dtmf_payload_type, COMFORT_NOISE_PAYLOAD_TYPE):
            self._stats.unknown_payload += 1
            return
        if not self._accept_source(addr[:2], now):
            self._stats.foreign += 1
            return
        self._stats.packets_received += 1
        self._stats.bytes_received += len(data)
        self._remote_ssrc = packet.ssrc
        if payload_type == self.codec.payload_type:
            self._arrival_jitter.update(now, packet.timestamp)
        self._jitter.push(packet, now)

    def _accept_source(self, source: Address, now: float) -> bool:
        if source != self._latched and (
            self._latched is None or now - self._last_from_latched >= self.relatch_after
        ):
            self._latched = source
        if source != self._latched:
            return False
        self._last_from_latched = now
        return True

    def _play_out(self, now: float) -> None:
        for item in self._jitter.pop(now):
            if not isinstance(item, Played):
                self._deliver_audio(self._concealer.conceal())
            elif item.packet.payload_type == self.codec.payload_type:
                self._deliver_audio(self._concealer.good(self.codec.decode(item.packet.payload)))
            elif item.packet.payload_type == self.dtmf_payload_type:
                self._receive_dtmf(item.packet, now)
            else:
                self._deliver_audio(self._concealer.good(self._silence))

    def _receive_dtmf(self, packet: RtpPacket, now: float) -> None:
        try:
            digits = self._dtmf.receive(packet, now)
        except PeerMediaError:
            self._stats.malformed += 1
            return
        self._deliver_digits(digits)

    def _deliver_audio(self, pcm: bytes) -> None:
        if self.caller_audio.full():
            # Nobody is listening fast enough: keep the newest audio, it matters most.
            self.caller_audio.get_nowait()
            self._stats.audio_dropped += 1
        self.caller_audio.put_nowait(pcm)

    def _deliver_digits(self, digits: list[DtmfDigit]) -> None:
        for digit in digits:
            self.dtmf_digits.put_nowait(digit.digit)
            if self._on_dtmf is not None:
                self._on_dtmf(digit)

    def _rtcp_received(self, data: bytes) -> None:
        try:
            packets = parse_rtcp(data)
        except PeerMediaError:
            self._stats.malformed += 1
            return
        self._stats.rtcp_received += 1
        for packet in packets:
            if isinstance(packet, Bye) and self._remote_ssrc in packet.ssrcs:
                self._stats.remote_bye = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._socket_closed()

    def _socket_closed(self) -> None:
        # Transports close their sockets a loop iteration after close(): only then may the
        # port go back to the allocator, or the next call to get it would fail to bind.
        self._open_sockets -= 1
        if self._open_sockets == 0 and self._allocator is not None and self.local_address is not None:
            self._allocator.release(self.local_address[1])
            self._allocator = None

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable while the peer sets up) must not end the session.
        pass


def _load_wav(path: Path, sample_rate: int) -> bytes:
    return pcm_from_wav(path.read_bytes(), sample_rate)


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self._session = session

    def datagram_received(self, data: bytes, addr: Address) -> None:  # type: ignore[override]
        self._session._rtcp_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._session._socket_closed()
