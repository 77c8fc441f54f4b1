"""Real sockets, 127.0.0.1 only: nothing here may send a packet anywhere else."""

from __future__ import annotations

import asyncio
import io
import socket
import struct
import wave
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from telephony.media.codecs import Pcmu, codec_by_name
from telephony.media.dtmf import DtmfDigit
from telephony.media.endpoint import RtpPortAllocator, RtpSession
from telephony.media.errors import LocalMediaError, PortsExhausted
from telephony.media.rtp import RtpPacket, parse_rtp
from telephony.tests.media.audio import dominant_frequency, rms, sine

LOOPBACK = "127.0.0.1"
BASE_PORT = 41000  # inside the product's 10000-60000 media range

pytestmark = pytest.mark.slow


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=20))


async def eventually(predicate: Callable[[], bool], *, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def drain(queue: asyncio.Queue[bytes], *, seconds: float) -> bytes:
    """Everything the queue yields over `seconds`."""
    chunks: list[bytes] = []
    end = asyncio.get_running_loop().time() + seconds
    while (left := end - asyncio.get_running_loop().time()) > 0:
        try:
            chunks.append(await asyncio.wait_for(queue.get(), left))
        except TimeoutError:
            break
    return b"".join(chunks)


class Collector(asyncio.DatagramProtocol):
    """A bare UDP socket standing in for a PBX (or an intruder)."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # selector transports lack the base

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((data, addr))

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        assert to[0] == LOOPBACK
        assert self.transport is not None
        self.transport.sendto(data, to)


@asynccontextmanager
async def raw_socket() -> AsyncIterator[Collector]:
    _, collector = await asyncio.get_running_loop().create_datagram_endpoint(
        Collector, local_addr=(LOOPBACK, 0)
    )
    try:
        yield collector
    finally:
        assert collector.transport is not None
        collector.transport.close()


@asynccontextmanager
async def session(
    allocator: RtpPortAllocator, codec: str = "PCMU", **options: Any
) -> AsyncIterator[RtpSession]:
    rtp = RtpSession(codec=codec_by_name(codec), **options)
    await rtp.start(host=LOOPBACK, allocator=allocator)
    try:
        yield rtp
    finally:
        rtp.close()
        await asyncio.sleep(0.01)  # the sockets close, and the port returns, a loop turn later


@asynccontextmanager
async def pair(
    allocator: RtpPortAllocator, codec: str = "PCMU"
) -> AsyncIterator[tuple[RtpSession, RtpSession]]:
    async with session(allocator, codec) as a, session(allocator, codec) as b:
        assert a.local_address is not None and b.local_address is not None
        a.set_remote(b.local_address)
        b.set_remote(a.local_address)
        yield a, b


@pytest.fixture
def allocator() -> RtpPortAllocator:
    return RtpPortAllocator(BASE_PORT, BASE_PORT + 199)


def rtp_bytes(sequence: int, *, ssrc: int = 0xABCD, payload_type: int = 0) -> bytes:
    return RtpPacket(payload_type, sequence, sequence * 160, ssrc, b"\xff" * 160).to_bytes()


# --- the port allocator (pure) ------------------------------------------------------------


def test_allocator_hands_out_even_ports_with_room_for_rtcp() -> None:
    ports = RtpPortAllocator(10001, 10008)
    assert [ports.allocate() for _ in range(3)] == [10002, 10004, 10006]
    with pytest.raises(PortsExhausted):
        ports.allocate()


def test_allocator_reuses_freed_ports_least_recently_freed_first() -> None:
    ports = RtpPortAllocator(10000, 10005)
    first, second, third = ports.allocate(), ports.allocate(), ports.allocate()
    assert (first, second, third) == (10000, 10002, 10004)
    ports.release(second)
    ports.release(first)
    assert ports.allocate() == second
    assert ports.allocate() == first
    assert ports.in_use == 3 and ports.available == 0


def test_allocator_ignores_unknown_and_double_releases() -> None:
    ports = RtpPortAllocator(10000, 10003)
    port = ports.allocate()
    ports.release(port)
    ports.release(port)
    ports.release(12345)
    assert ports.available == 2


def test_allocator_refuses_a_range_without_an_rtp_rtcp_pair() -> None:
    with pytest.raises(ValueError):
        RtpPortAllocator(10001, 10002)


def test_default_range_is_the_products_media_range() -> None:
    ports = RtpPortAllocator()
    assert ports.available == 25000
    assert ports.allocate() == 10000


# --- two sessions back to back ------------------------------------------------------------


def test_audio_flows_both_ways_and_arrives_bit_exact(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with pair(allocator) as (a, b):
            tone_ab = sine(1000, sample_rate=8000, seconds=0.4)
            tone_ba = sine(400, sample_rate=8000, seconds=0.4)
            played = await asyncio.gather(a.play(tone_ab), b.play(tone_ba))
            assert played == [True, True]
            heard_by_b = await drain(b.caller_audio, seconds=0.3)
            heard_by_a = await drain(a.caller_audio, seconds=0.05)
            codec = Pcmu()
            # G.711 is stateless and frames align with packets: the µ-law round trip of the
            # tone must appear, byte for byte, in what the other side decoded.
            assert codec.decode(codec.encode(tone_ab)) in heard_by_b
            assert codec.decode(codec.encode(tone_ba)) in heard_by_a
            assert a.stats.packets_lost == b.stats.packets_lost == 0
            assert a.stats.latched == b.local_address
            assert b.stats.latched == a.local_address
            assert 0 <= b.stats.jitter_ms < 20

    run(scenario())


def test_g722_sessions_carry_wideband_audio(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with pair(allocator, "G722") as (a, b):
            assert await a.play(sine(5000, sample_rate=16000, seconds=0.4))  # above G.711's band
            heard = await drain(b.caller_audio, seconds=0.3)
            frames = [heard[i : i + 640] for i in range(0, len(heard), 640)]
            loud = b"".join(f for f in frames if rms(f) > 3000)
            assert len(loud) >= 15 * 640
            assert dominant_frequency(loud, sample_rate=16000) == pytest.approx(5000, rel=0.05)

    run(scenario())


def test_dtmf_digits_cross_in_order_with_callback(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        seen: list[DtmfDigit] = []
        async with session(allocator) as a, session(allocator, on_dtmf=seen.append) as b:
            assert a.local_address is not None and b.local_address is not None
            a.set_remote(b.local_address)
            b.set_remote(a.local_address)
            sent = await asyncio.gather(a.send_dtmf("7"), a.send_dtmf("#"), a.send_dtmf("7"))
            assert sent == [True, True, True]
            digits = [await asyncio.wait_for(b.dtmf_digits.get(), 1.0) for _ in range(3)]
            assert digits == ["7", "#", "7"]
            assert [(d.digit, d.duration) for d in seen] == [("7", 800), ("#", 800), ("7", 800)]
            assert b.stats.packets_lost == 0

    run(scenario())


def test_play_file_converts_a_stereo_16k_wav(allocator: RtpPortAllocator, tmp_path: Path) -> None:
    mono = sine(1000, sample_rate=16000, seconds=0.3)
    values = struct.unpack(f"<{len(mono) // 2}h", mono)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(struct.pack(f"<{2 * len(values)}h", *[v for s in values for v in (s, s)]))
    path = tmp_path / "greeting.wav"
    path.write_bytes(buffer.getvalue())

    async def scenario() -> None:
        async with pair(allocator) as (a, b):
            assert await a.play_file(path) is True
            heard = await drain(b.caller_audio, seconds=0.3)
            frames = [heard[i : i + 320] for i in range(0, len(heard), 320)]
            loud = b"".join(f for f in frames if rms(f) > 3000)
            assert 13 * 320 <= len(loud) <= 16 * 320  # 0.3 s at 8 kHz
            assert dominant_frequency(loud, sample_rate=8000) == pytest.approx(1000, rel=0.05)

    run(scenario())


def test_stop_playback_settles_the_future_false_at_once(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with pair(allocator) as (a, _):
            long_prompt = a.play(sine(500, sample_rate=8000, seconds=10.0))
            await asyncio.sleep(0.1)
            a.stop_playback()
            assert await asyncio.wait_for(long_prompt, 0.05) is False
            sent_before = a.stats.packets_sent
            await asyncio.sleep(0.1)
            assert a.stats.packets_sent > sent_before  # silence keeps flowing after barge-in

    run(scenario())


def test_close_settles_pending_work_and_returns_the_port(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        rtp = RtpSession(codec=Pcmu(), remote=(LOOPBACK, 9))
        await rtp.start(host=LOOPBACK, allocator=allocator)
        prompt = rtp.play(sine(500, sample_rate=8000, seconds=5.0))
        digit = rtp.send_dtmf("1")
        assert allocator.in_use == 1
        rtp.close()
        rtp.close()  # idempotent
        assert await prompt is False
        assert await digit is False
        assert allocator.in_use == 1  # until the sockets have really closed
        await asyncio.sleep(0.01)
        assert allocator.in_use == 0
        assert await rtp.play(b"\x00\x00") is False
        assert rtp.closed

    run(scenario())


def test_the_stream_keeps_the_20ms_clock(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with raw_socket() as peer, session(allocator, remote=None) as rtp:
            rtp.set_remote(peer.address)
            await asyncio.sleep(1.0)
            packets = [parse_rtp(data) for data, _ in peer.received]
            assert 45 <= len(packets) <= 52
            steps = {(b.timestamp - a.timestamp) % 2**32 for a, b in zip(packets, packets[1:], strict=False)}
            assert steps == {160}
            assert packets[0].marker and not any(p.marker for p in packets[1:])

    run(scenario())


# --- symmetric RTP ------------------------------------------------------------------------


def test_latches_to_where_the_peer_really_sends_from(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with raw_socket() as announced, session(allocator) as a, session(allocator) as b:
            assert a.local_address is not None and b.local_address is not None
            a.set_remote(announced.address)  # what the SDP said; NAT will change the port
            await asyncio.sleep(0.1)
            assert len(announced.received) > 0  # before latching we follow the SDP
            b.set_remote(a.local_address)
            await eventually(lambda: a.stats.latched == b.local_address)
            await asyncio.sleep(0.05)
            count_at_latch = len(announced.received)
            received_by_b = b.stats.packets_received
            await asyncio.sleep(0.2)
            assert len(announced.received) == count_at_latch
            assert b.stats.packets_received >= received_by_b + 8

    run(scenario())


def test_ignores_other_sources_once_latched(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with pair(allocator) as (a, b), raw_socket() as intruder:
            assert a.local_address is not None
            await eventually(lambda: a.stats.latched == b.local_address)
            for n in range(10):
                intruder.send(rtp_bytes(n), a.local_address)
            await eventually(lambda: a.stats.foreign == 10)
            assert a.stats.latched == b.local_address

    run(scenario())


def test_relatches_after_the_latched_source_goes_quiet(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with session(allocator, relatch_after=0.3) as a, raw_socket() as first, raw_socket() as moved:
            assert a.local_address is not None
            a.set_remote(first.address)
            first.send(rtp_bytes(1), a.local_address)
            await eventually(lambda: a.stats.latched == first.address)
            moved.send(rtp_bytes(2), a.local_address)  # too soon: still ignored
            await eventually(lambda: a.stats.foreign == 1)
            await asyncio.sleep(0.35)
            moved.send(rtp_bytes(3), a.local_address)
            await eventually(lambda: a.stats.latched == moved.address)
            before = len(moved.received)
            await asyncio.sleep(0.1)
            assert len(moved.received) >= before + 3  # our stream follows the new source

    run(scenario())


def test_set_remote_forgets_the_latch(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with session(allocator) as a, raw_socket() as first, raw_socket() as second:
            assert a.local_address is not None
            first.send(rtp_bytes(1), a.local_address)
            await eventually(lambda: a.stats.latched == first.address)
            a.set_remote(second.address)
            assert a.stats.latched is None
            second.send(rtp_bytes(2), a.local_address)
            await eventually(lambda: a.stats.latched == second.address)

    run(scenario())


# --- bad input ----------------------------------------------------------------------------


def test_garbage_and_unknown_payloads_are_counted_and_the_call_goes_on(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with pair(allocator) as (a, b), raw_socket() as attacker:
            assert b.local_address is not None
            for junk in (b"\x80", b"hello world, not rtp", bytes(12)):  # (asyncio never sends b"")
                attacker.send(junk, b.local_address)
            attacker.send(rtp_bytes(1, payload_type=18), b.local_address)  # G.729, not negotiated
            await eventually(lambda: b.stats.malformed == 3 and b.stats.unknown_payload == 1)
            assert b.stats.latched is None or b.stats.latched != attacker.address
            assert await a.play(sine(1000, sample_rate=8000, seconds=0.1))
            heard = await drain(b.caller_audio, seconds=0.2)
            assert rms(heard) > 1000

    run(scenario())


def test_a_truncated_telephone_event_is_dropped_not_fatal(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with session(allocator) as a, raw_socket() as peer:
            assert a.local_address is not None
            peer.send(rtp_bytes(1), a.local_address)
            peer.send(RtpPacket(101, 2, 320, 0xABCD, b"\x01").to_bytes(), a.local_address)
            peer.send(rtp_bytes(3), a.local_address)
            await eventually(lambda: a.stats.malformed == 1)
            assert a.stats.packets_received == 3
            assert a.dtmf_digits.empty()

    run(scenario())


def test_rtcp_bye_from_the_peer_is_noticed(allocator: RtpPortAllocator) -> None:
    async def scenario() -> None:
        async with session(allocator) as a, raw_socket() as peer:
            assert a.local_address is not None
            a.set_remote(peer.address)
            rtcp_address = (LOOPBACK, a.local_address[1] + 1)
            peer.send(rtp_bytes(1, ssrc=0x1234), a.local_address)
            await eventually(lambda: a.stats.packets_received == 1)
            peer.send(bytes.fromhex("81 cb 0001 99999999"), rtcp_address)  # someone else's stream
            peer.send(b"\x00garbage", rtcp_address)
            await eventually(lambda: a.stats.rtcp_received == 1 and a.stats.malformed == 1)
            assert not a.stats.remote_bye
            peer.send(bytes.fromhex("80 c9 0001 00001234 81 cb 0001 00001234"), rtcp_address)
            await eventually(lambda: a.stats.remote_bye)

    run(scenario())


# --- ports --------------------------------------------------------------------------------


def test_allocator_exhaustion_with_real_sockets() -> None:
    async def scenario() -> None:
        ports = RtpPortAllocator(BASE_PORT + 400, BASE_PORT + 403)  # room for two calls
        async with session(ports), session(ports):
            third = RtpSession(codec=Pcmu())
            with pytest.raises(PortsExhausted):
                await third.start(host=LOOPBACK, allocator=ports)
        async with session(ports) as again:  # both freed: the range serves again
            assert again.local_address is not None

    run(scenario())


def test_ports_held_by_another_process_are_skipped() -> None:
    async def scenario() -> None:
        ports = RtpPortAllocator(BASE_PORT + 500, BASE_PORT + 505)
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        squatter.bind((LOOPBACK, BASE_PORT + 501))  # the RTCP port of the first pair
        try:
            async with session(ports) as rtp:
                assert rtp.local_address == (LOOPBACK, BASE_PORT + 502)
            assert ports.in_use == 0 and ports.available == 3
        finally:
            squatter.close()

    run(scenario())


def test_start_needs_a_port_source_and_only_once() -> None:
    async def scenario() -> None:
        rtp = RtpSession(codec=Pcmu())
        with pytest.raises(LocalMediaError):
            await rtp.start(host=LOOPBACK)
        await rtp.start(host=LOOPBACK, port=0)
        try:
            with pytest.raises(LocalMediaError):
                await rtp.start(host=LOOPBACK, port=0)
        finally:
            rtp.close()

    run(scenario())
