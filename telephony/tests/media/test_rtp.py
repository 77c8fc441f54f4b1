from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.media.errors import RtpParseError
from telephony.media.rtp import (
    Bye,
    InterarrivalJitter,
    ReceiverReport,
    ReportBlock,
    RtpExtension,
    RtpPacket,
    SenderReport,
    build_simple_rtp,
    extend_seq,
    looks_like_rtcp,
    parse_rtcp,
    parse_rtp,
    seq_add,
    seq_delta,
    ts_add,
    ts_delta,
)

# (packet, wire bytes) pairs, written out by hand from RFC 3550 section 5.1.
RTP_TABLE = [
    (
        RtpPacket(
            payload_type=0, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304, payload=b"\xff\xfe"
        ),
        bytes.fromhex("80 00 1234 deadbeef 01020304 fffe"),
    ),
    (
        RtpPacket(payload_type=101, sequence=65535, timestamp=0, ssrc=0xFFFFFFFF, marker=True),
        bytes.fromhex("80 e5 ffff 00000000 ffffffff"),
    ),
    (
        RtpPacket(payload_type=8, sequence=1, timestamp=160, ssrc=7, csrcs=(0xAABBCCDD, 2), payload=b"x"),
        bytes.fromhex("82 08 0001 000000a0 00000007 aabbccdd 00000002 78"),
    ),
    (
        RtpPacket(
            payload_type=9,
            sequence=2,
            timestamp=320,
            ssrc=7,
            extension=RtpExtension(0xBEDE, b"\x10\x01\x00\x00"),
            payload=b"ab",
        ),
        bytes.fromhex("90 09 0002 00000140 00000007 bede0001 10010000 6162"),
    ),
    (
        RtpPacket(payload_type=0, sequence=3, timestamp=480, ssrc=7, payload=b"\x01\x02", padding=3),
        bytes.fromhex("a0 00 0003 000001e0 00000007 0102 000003"),
    ),
]


@pytest.mark.parametrize(("packet", "wire"), RTP_TABLE)
def test_build_matches_the_byte_table(packet: RtpPacket, wire: bytes) -> None:
    assert packet.to_bytes() == wire


@pytest.mark.parametrize(("packet", "wire"), RTP_TABLE)
def test_parse_matches_the_byte_table(packet: RtpPacket, wire: bytes) -> None:
    assert parse_rtp(wire) == packet


def test_parse_accepts_memoryview_and_returns_plain_bytes() -> None:
    packet = parse_rtp(memoryview(RTP_TABLE[0][1]))
    assert type(packet.payload) is bytes
    assert packet.payload == b"\xff\xfe"


MALFORMED = {
    "empty": b"",
    "one byte": b"\x80",
    "eleven bytes": bytes.fromhex("80 00 0001 00000000 000000"),
    "version 0": bytes.fromhex("00 00 0001 00000000 00000001"),
    "version 1": bytes.fromhex("40 00 0001 00000000 00000001"),
    "version 3": bytes.fromhex("c0 00 0001 00000000 00000001"),
    "CSRC count past the end": bytes.fromhex("8f 00 0001 00000000 00000001 00000002"),
    "extension header truncated": bytes.fromhex("90 00 0001 00000000 00000001 bede"),
    "extension length past the end": bytes.fromhex("90 00 0001 00000000 00000001 bede0002 00000000"),
    "padding count zero": bytes.fromhex("a0 00 0001 00000000 00000001 0000 00"),
    "padding longer than the packet": bytes.fromhex("a0 00 0001 00000000 00000001 ff"),
    "padding eats the header": bytes.fromhex("a0 00 0001 00000000 00000001 0d"),
    "padding eats the extension": bytes.fromhex("b0 00 0001 00000000 00000001 bede0001 00000005"),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_packets_raise_a_typed_error(data: bytes) -> None:
    with pytest.raises(RtpParseError):
        parse_rtp(data)


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_raise_rtp_parse_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpParseError:
        return
    assert 0 <= packet.payload_type <= 127
    assert len(packet.payload) <= len(data) - 12


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=32),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none()
    | st.builds(RtpExtension, st.integers(0, 0xFFFF), st.binary(max_size=8).map(lambda b: b * 4)),
    padding=st.integers(0, 255),
)


@given(packets)
def test_build_then_parse_round_trips(packet: RtpPacket) -> None:
    assert parse_rtp(packet.to_bytes()) == packet


simple_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=32),
    marker=st.booleans(),
)


@given(simple_packets)
def test_the_fast_builder_matches_the_general_one(packet: RtpPacket) -> None:
    fast = build_simple_rtp(
        packet.payload_type, packet.marker, packet.sequence, packet.timestamp, packet.ssrc, packet.payload
    )
    assert fast == packet.to_bytes()


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(payload_type=128, sequence=0, timestamp=0, ssrc=0),
        RtpPacket(payload_type=0, sequence=65536, timestamp=0, ssrc=0),
        RtpPacket(payload_type=0, sequence=0, timestamp=1 << 32, ssrc=0),
        RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=-1),
        RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=0, csrcs=tuple(range(16))),
        RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=0, extension=RtpExtension(1, b"abc")),
    ],
)
def test_build_rejects_fields_that_do_not_fit(packet: RtpPacket) -> None:
    with pytest.raises(ValueError):
        packet.to_bytes()


# --- wraparound ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("older", "newer", "delta"),
    [
        (0, 1, 1),
        (65535, 0, 1),
        (0, 65535, -1),
        (65530, 4, 10),
        (100, 100, 0),
        (0, 32767, 32767),
        (0, 32768, -32768),
    ],
)
def test_seq_delta_wraps_at_16_bits(older: int, newer: int, delta: int) -> None:
    assert seq_delta(older, newer) == delta


@pytest.mark.parametrize(
    ("older", "newer", "delta"),
    [(0, 160, 160), (0xFFFFFFA0, 0, 96), (0, 0xFFFFFF60, -160), (5, 5, 0)],
)
def test_ts_delta_wraps_at_32_bits(older: int, newer: int, delta: int) -> None:
    assert ts_delta(older, newer) == delta


def test_add_helpers_wrap() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535
    assert ts_add(0xFFFFFFFF, 161) == 160
    assert ts_add(0, -160) == 0xFFFFFF60


def test_extend_seq_is_monotonic_across_wraps() -> None:
    extended = 65530
    values = []
    seq = 65530
    for _ in range(70000):
        seq = seq_add(seq, 1)
        extended = extend_seq(extended, seq)
        values.append(extended)
    assert values == list(range(65531, 65531 + 70000))


def test_extend_seq_places_reordered_packets_before_the_wrap() -> None:
    assert extend_seq(65536 + 2, 65534) == 65534  # arrived after 2 had wrapped past it
    assert extend_seq(65534, 3) == 65536 + 3


# --- interarrival jitter (RFC 3550 A.8) ---------------------------------------------------


def test_jitter_is_zero_for_constant_transit_even_across_a_timestamp_wrap() -> None:
    estimator = InterarrivalJitter(8000)
    ts = 0xFFFFFF00
    for i in range(100):
        estimator.update(10.0 + i * 0.02, ts_add(ts, i * 160))
    assert estimator.jitter == pytest.approx(0.0, abs=1e-6)


def test_jitter_converges_to_the_alternating_delay() -> None:
    # Transit alternates by 10 ms, so |D| is always 80 ticks and J converges to 80.
    estimator = InterarrivalJitter(8000)
    for i in range(500):
        estimator.update(i * 0.02 + (0.01 if i % 2 else 0.0), i * 160)
    assert estimator.jitter == pytest.approx(80.0, rel=1e-3)
    assert estimator.seconds == pytest.approx(0.01, rel=1e-3)


def test_jitter_ignores_repeated_timestamps() -> None:
    estimator = InterarrivalJitter(8000)
    estimator.update(0.0, 1000)
    for i in range(1, 10):  # RFC 4733 updates: same timestamp, sent 50 ms apart
        estimator.update(i * 0.05, 1000)
    assert estimator.jitter == 0.0


# --- RTCP ---------------------------------------------------------------------------------

SR_WITH_ONE_BLOCK = bytes.fromhex(
    "81 c8 000c"  # V=2 RC=1 PT=200 length=12 words
    "11111111"  # sender SSRC
    "e5a1b2c3 80000000"  # NTP timestamp
    "0000a000"  # RTP timestamp
    "00000064 00003e80"  # 100 packets, 16000 octets
    "22222222"  # report block: source SSRC
    "40 fffffe"  # fraction lost 64/256, cumulative lost -2
    "0001000a"  # highest extended sequence
    "00000050"  # jitter 80
    "a1b2c3d4 00010000"  # LSR, DLSR
)
RR_EMPTY = bytes.fromhex("80 c9 0001 33333333")
SDES = bytes.fromhex("81 ca 0003 33333333 0105 616c696365 00")  # CNAME "alice", padded to a word


def test_parse_sender_report() -> None:
    (report,) = parse_rtcp(SR_WITH_ONE_BLOCK)
    assert report == SenderReport(
        ssrc=0x11111111,
        ntp_timestamp=0xE5A1B2C380000000,
        rtp_timestamp=0xA000,
        packet_count=100,
        octet_count=16000,
        reports=(ReportBlock(0x22222222, 64, -2, 0x1000A, 80, 0xA1B2C3D4, 0x10000),),
    )


def test_parse_compound_rr_sdes_bye() -> None:
    bye = bytes.fromhex("81 cb 0003 33333333 06 68616e677570 00")  # reason "hangup"
    parsed = parse_rtcp(RR_EMPTY + SDES + bye)
    assert parsed == [ReceiverReport(0x33333333), Bye((0x33333333,), "hangup")]


def test_parse_bye_without_reason() -> None:
    assert parse_rtcp(bytes.fromhex("82 cb 0002 00000001 00000002")) == [Bye((1, 2))]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes.fromhex("80 c9"),
        bytes.fromhex("40 c9 0001 33333333"),  # version 1
        bytes.fromhex("80 c9 0005 33333333"),  # length past the end
        bytes.fromhex("81 c9 0001 33333333"),  # one report block announced, none present
        bytes.fromhex("80 c8 0001 33333333"),  # SR without sender info
        bytes.fromhex("81 cb 0001 33333333 07000000"),  # BYE reason longer than the packet
        RR_EMPTY + b"\x80",  # trailing garbage
    ],
)
def test_malformed_rtcp_raises(data: bytes) -> None:
    with pytest.raises(RtpParseError):
        parse_rtcp(data)


@given(st.binary(max_size=80))
def test_any_bytes_parse_as_rtcp_or_raise(data: bytes) -> None:
    with contextlib.suppress(RtpParseError):
        parse_rtcp(data)


def test_rtcp_is_told_apart_from_rtp() -> None:
    assert looks_like_rtcp(RR_EMPTY)
    assert not looks_like_rtcp(RTP_TABLE[0][1])
    assert not looks_like_rtcp(RTP_TABLE[1][1])  # marker + PT 101 = 0xe5, above the RTCP range
