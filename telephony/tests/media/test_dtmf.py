from __future__ import annotations

import pytest

from telephony.media.dtmf import (
    DtmfDigit,
    DtmfPacket,
    DtmfReceiver,
    ReportAt,
    TelephoneEvent,
    digit_to_event,
    dtmf_packets,
    parse_telephone_event,
)
from telephony.media.errors import DtmfParseError
from telephony.media.rtp import RtpPacket

SSRC = 0x5EED


# --- payload ------------------------------------------------------------------------------

PAYLOAD_TABLE = [
    (TelephoneEvent(event=5, end=False, volume=10, duration=400), bytes.fromhex("05 0a 0190")),
    (TelephoneEvent(event=5, end=True, volume=10, duration=800), bytes.fromhex("05 8a 0320")),
    (TelephoneEvent(event=11, end=True, volume=63, duration=65535), bytes.fromhex("0b bf ffff")),
    (TelephoneEvent(event=0, end=False, volume=0, duration=0), bytes.fromhex("00 00 0000")),
]


@pytest.mark.parametrize(("event", "wire"), PAYLOAD_TABLE)
def test_payload_byte_table(event: TelephoneEvent, wire: bytes) -> None:
    assert event.to_bytes() == wire
    assert parse_telephone_event(wire) == event


def test_reserved_bit_is_ignored() -> None:
    assert parse_telephone_event(bytes.fromhex("05 ca 0320")) == TelephoneEvent(5, True, 10, 800)


@pytest.mark.parametrize("payload", [b"", b"\x05", b"\x05\x8a\x03"])
def test_short_payload_raises(payload: bytes) -> None:
    with pytest.raises(DtmfParseError):
        parse_telephone_event(payload)


@pytest.mark.parametrize(("digit", "code"), [("0", 0), ("9", 9), ("*", 10), ("#", 11), ("A", 12), ("d", 15)])
def test_digit_codes(digit: str, code: int) -> None:
    assert digit_to_event(digit) == code
    assert TelephoneEvent(code).digit == digit.upper()


@pytest.mark.parametrize("digit", ["", "E", "12", " "])
def test_bad_digits_raise(digit: str) -> None:
    with pytest.raises(ValueError):
        digit_to_event(digit)


def test_flash_has_no_digit() -> None:
    assert TelephoneEvent(16).digit is None


# --- sender -------------------------------------------------------------------------------


def test_sender_packet_sequence_for_100ms() -> None:
    packets = dtmf_packets("5", start_time=10.0, timestamp=1000, duration=0.1)
    events = [parse_telephone_event(p.payload) for p in packets]
    assert [p.send_at for p in packets] == pytest.approx([10.0, 10.05, 10.1, 10.15, 10.2])
    assert [p.marker for p in packets] == [True, False, False, False, False]
    assert {p.timestamp for p in packets} == {1000}
    assert [e.end for e in events] == [False, False, True, True, True]
    assert [e.duration for e in events] == [400, 800, 800, 800, 800]
    assert {e.event for e in events} == {5}


def test_sender_long_press_updates_every_50ms_with_growing_duration() -> None:
    packets = dtmf_packets("#", start_time=0.0, timestamp=7, duration=0.23)
    updates = [parse_telephone_event(p.payload) for p in packets if not parse_telephone_event(p.payload).end]
    assert [e.duration for e in updates] == [400, 800, 1200, 1600, 1840]
    ends = [p for p in packets if parse_telephone_event(p.payload).end]
    assert len(ends) == 3
    assert ends[0].send_at == pytest.approx(0.23)


def test_sender_never_sends_a_zero_duration() -> None:
    for duration in (0.0, 0.001, 0.04):
        packets = dtmf_packets("1", start_time=0.0, timestamp=0, duration=duration)
        assert all(parse_telephone_event(p.payload).duration > 0 for p in packets)


def test_sender_rejects_a_bad_digit() -> None:
    with pytest.raises(ValueError):
        dtmf_packets("X", start_time=0.0, timestamp=0)


# --- receiver -----------------------------------------------------------------------------


def rtp(packet: DtmfPacket, *, ssrc: int = SSRC) -> RtpPacket:
    return RtpPacket(101, 0, packet.timestamp, ssrc, packet.payload, packet.marker)


def feed(receiver: DtmfReceiver, packets: list[DtmfPacket]) -> list[DtmfDigit]:
    digits: list[DtmfDigit] = []
    for packet in packets:
        digits += receiver.receive(rtp(packet), packet.send_at)
    return digits


def press(digit: str, *, at: float, timestamp: int, duration: float = 0.1) -> list[DtmfPacket]:
    return dtmf_packets(digit, start_time=at, timestamp=timestamp, duration=duration)


def test_one_press_is_one_digit_reported_at_the_end() -> None:
    receiver = DtmfReceiver()
    packets = press("7", at=0.0, timestamp=8000)
    assert feed(receiver, packets[:2]) == []
    assert feed(receiver, packets[2:]) == [DtmfDigit("7", 8000, 800)]


def test_report_at_start_reports_on_the_first_packet_only() -> None:
    receiver = DtmfReceiver(report_at=ReportAt.START)
    packets = press("7", at=0.0, timestamp=8000)
    assert feed(receiver, packets[:1]) == [DtmfDigit("7", 8000, 400)]
    assert feed(receiver, packets[1:]) == []


def test_duplicated_end_packets_and_retransmissions_give_one_digit() -> None:
    packets = press("3", at=0.0, timestamp=100)
    doubled = [p for p in packets for _ in range(2)] + packets[-1:] * 4
    assert [d.digit for d in feed(DtmfReceiver(), doubled)] == ["3"]


def test_lost_start_packet_still_gives_the_digit() -> None:
    packets = press("9", at=0.0, timestamp=100)
    assert [d.digit for d in feed(DtmfReceiver(), packets[1:])] == ["9"]


def test_only_an_end_packet_arriving_still_gives_the_digit() -> None:
    packets = press("9", at=0.0, timestamp=100)
    for mode in ReportAt:
        assert [d.digit for d in feed(DtmfReceiver(report_at=mode), packets[-1:])] == ["9"]


def test_same_digit_twice_in_a_row_is_two_digits() -> None:
    first = press("1", at=0.0, timestamp=1000)
    second = press("1", at=0.5, timestamp=1000 + 4000)
    digits = feed(DtmfReceiver(), first + second)
    assert [(d.digit, d.timestamp) for d in digits] == [("1", 1000), ("1", 5000)]


def test_lost_end_packets_are_reported_when_the_next_event_starts() -> None:
    first = [p for p in press("4", at=0.0, timestamp=1000) if not parse_telephone_event(p.payload).end]
    second = press("5", at=0.5, timestamp=5000)
    digits = feed(DtmfReceiver(), first + second[:1])
    assert [(d.digit, d.duration) for d in digits] == [("4", 800)]


def test_lost_end_packets_are_reported_after_the_timeout() -> None:
    receiver = DtmfReceiver(end_timeout=0.5)
    updates = [p for p in press("4", at=0.0, timestamp=1000) if not parse_telephone_event(p.payload).end]
    assert feed(receiver, updates) == []
    assert receiver.next_deadline() == pytest.approx(0.55)
    assert receiver.handle_timeout(0.54) == []
    assert [d.digit for d in receiver.handle_timeout(0.55)] == ["4"]
    assert receiver.next_deadline() is None
    assert receiver.handle_timeout(5.0) == []


def test_late_end_packet_of_the_previous_event_is_ignored() -> None:
    first = press("2", at=0.0, timestamp=1000)
    second = press("8", at=0.3, timestamp=3400)
    straggler = first[-1]
    digits = feed(DtmfReceiver(), first + second[:2] + [straggler] + second[2:])
    assert [d.digit for d in digits] == ["2", "8"]


def test_timestamps_wrapping_do_not_lose_digits() -> None:
    first = press("1", at=0.0, timestamp=0xFFFFFF00)
    second = press("2", at=0.5, timestamp=0x00000F00)
    assert [d.digit for d in feed(DtmfReceiver(), first + second)] == ["1", "2"]


def test_a_new_ssrc_starts_afresh_even_with_an_older_timestamp() -> None:
    receiver = DtmfReceiver()
    first = press("1", at=0.0, timestamp=50000)
    again = press("6", at=1.0, timestamp=49000)  # "older", but from a new stream after a transfer
    digits = feed(receiver, first)
    for packet in again:
        digits += receiver.receive(rtp(packet, ssrc=SSRC + 1), packet.send_at)
    assert [d.digit for d in digits] == ["1", "6"]


def test_a_sender_timestamp_jump_backwards_is_not_taken_for_stragglers() -> None:
    first = press("1", at=0.0, timestamp=10_000_000)
    second = press("2", at=1.0, timestamp=1000)  # clock reset without a new SSRC
    assert [d.digit for d in feed(DtmfReceiver(), first + second)] == ["1", "2"]


def test_flash_events_give_no_digit_and_do_not_block_the_next() -> None:
    receiver = DtmfReceiver()
    flash = RtpPacket(101, 0, 500, SSRC, TelephoneEvent(16, end=True, duration=800).to_bytes(), True)
    assert receiver.receive(flash, 0.0) == []
    assert [d.digit for d in feed(receiver, press("0", at=0.2, timestamp=2000))] == ["0"]


def test_malformed_payload_raises_and_leaves_state_intact() -> None:
    receiver = DtmfReceiver()
    packets = press("5", at=0.0, timestamp=100)
    feed(receiver, packets[:1])
    with pytest.raises(DtmfParseError):
        receiver.receive(RtpPacket(101, 0, 100, SSRC, b"\x05"), 0.01)
    assert [d.digit for d in feed(receiver, packets[1:])] == ["5"]
