from __future__ import annotations

import random

import pytest

from telephony.media.codecs import Codec, G722Codec, Pcma, Pcmu
from telephony.media.dtmf import parse_telephone_event
from telephony.media.errors import CodecError
from telephony.media.pacer import Pacer
from telephony.media.rtp import RtpPacket, parse_rtp, seq_add, ts_add
from telephony.tests.media.audio import sine

START = 1000.0
FRAME = 0.02


def pacer(codec: Codec | None = None, *, seed: int = 1, **options: int) -> Pacer:
    return Pacer(codec or Pcmu(), start_time=START, rng=random.Random(seed), **options)


def run(p: Pacer, *, until: float) -> list[tuple[float, RtpPacket]]:
    """Drive the pacer like the event loop does: wake exactly at each deadline."""
    sent: list[tuple[float, RtpPacket]] = []
    now = START
    while now <= until:
        sent += [(now, parse_rtp(data)) for data in p.due(now)]
        now = p.next_deadline()
    return sent


def test_start_values_are_random_and_seeded() -> None:
    a, b, c = pacer(seed=1), pacer(seed=1), pacer(seed=2)
    assert (a.ssrc, a.first_sequence, a.first_timestamp) == (b.ssrc, b.first_sequence, b.first_timestamp)
    assert (a.ssrc, a.first_sequence, a.first_timestamp) != (c.ssrc, c.first_sequence, c.first_timestamp)


def test_one_second_of_idle_stream_is_50_silence_packets_on_the_grid() -> None:
    p = pacer()
    sent = run(p, until=START + 0.999)
    assert len(sent) == 50
    assert [t for t, _ in sent] == pytest.approx([START + n * FRAME for n in range(50)])
    assert [pk.sequence for _, pk in sent] == [seq_add(p.first_sequence, n) for n in range(50)]
    assert [pk.timestamp for _, pk in sent] == [ts_add(p.first_timestamp, 160 * n) for n in range(50)]
    assert {pk.ssrc for _, pk in sent} == {p.ssrc}
    assert {pk.payload_type for _, pk in sent} == {0}
    assert {pk.payload for _, pk in sent} == {b"\xff" * 160}  # µ-law silence
    assert [pk.marker for _, pk in sent] == [True] + [False] * 49


def test_sequence_and_timestamp_wrap() -> None:
    p = pacer()
    p.first_sequence = p._sequence = 65534
    p.first_timestamp = 0xFFFFFF60
    sent = run(p, until=START + 0.05)
    assert [pk.sequence for _, pk in sent] == [65534, 65535, 0]
    assert [pk.timestamp for _, pk in sent] == [0xFFFFFF60, 0, 160]


def test_irregular_wakeups_do_not_drift() -> None:
    rng = random.Random(3)
    p = pacer()
    now = last = START
    sent: list[RtpPacket] = []
    while now < START + 10:
        sent += [parse_rtp(d) for d in p.due(now)]
        last = now
        now += rng.uniform(0.001, 0.09)  # late, early, bursty: never on the grid, never a skip
    # Every slot up to the last wake-up was sent, none twice, and timestamps follow slots.
    assert len(sent) == int((last - START) / FRAME + 1e-9) + 1
    assert [pk.timestamp for pk in sent] == [ts_add(p.first_timestamp, 160 * n) for n in range(len(sent))]
    assert p.next_deadline() == pytest.approx(START + len(sent) * FRAME)


def test_a_long_stall_skips_frames_instead_of_bursting() -> None:
    p = pacer(max_catch_up=5)
    p.due(START)
    late = p.due(START + 1.0)  # the loop was blocked for a second
    assert len(late) == 1
    packet = parse_rtp(late[0])
    assert packet.marker  # the receiver should re-sync
    assert packet.timestamp == ts_add(p.first_timestamp, 160 * 50)  # real time is kept
    assert packet.sequence == seq_add(p.first_sequence, 1)  # but no sequence gap: nothing was lost


def test_a_short_delay_is_caught_up() -> None:
    p = pacer(max_catch_up=5)
    assert len(p.due(START + 0.085)) == 5


def test_playback_has_a_marker_and_the_encoded_audio_then_finishes() -> None:
    p = pacer()
    run(p, until=START + 0.03)  # two silence frames
    tone = sine(1000, sample_rate=8000, seconds=0.05)  # 2.5 frames
    tag = p.play(tone)
    assert p.is_playing
    sent = [pk for _, pk in run(p, until=START + 0.15)]
    audio = sent[:3]
    assert [pk.marker for pk in audio] == [True, False, False]
    assert audio[0].payload == Pcmu().encode(tone[:320])
    assert audio[2].payload == Pcmu().encode(tone[640:] + bytes(160))  # last frame padded
    assert sent[3].payload == b"\xff" * 160
    assert p.pop_finished() == [tag]
    assert p.pop_finished() == []
    assert not p.is_playing


def test_back_to_back_playbacks_are_one_talkspurt() -> None:
    p = pacer()
    run(p, until=START)
    first, second = p.play(bytes(320)), p.play(bytes(320))
    sent = [pk for _, pk in run(p, until=START + 0.05)]
    assert [pk.marker for pk in sent[:2]] == [True, False]  # the second one continues the spurt
    assert p.pop_finished() == [first, second]


def test_a_talkspurt_after_silence_gets_a_new_marker() -> None:
    p = pacer()
    run(p, until=START)
    p.play(bytes(320))
    run(p, until=START + 0.1)
    p.play(bytes(320))
    sent = [pk for _, pk in run(p, until=START + 0.13)]
    assert sent[0].marker


def test_stop_playback_is_immediate_and_reports_the_cancelled() -> None:
    p = pacer()
    first = p.play(sine(1000, sample_rate=8000, seconds=1.0))
    second = p.play(bytes(320))
    run(p, until=START + 0.1)
    assert p.stop_playback() == [first, second]
    sent = [pk for _, pk in run(p, until=START + 0.2)]
    assert {pk.payload for pk in sent[1:]} == {b"\xff" * 160}
    assert p.pop_finished() == []


def test_empty_playback_finishes_at_once_and_odd_bytes_are_refused() -> None:
    p = pacer()
    tag = p.play(b"")
    assert p.pop_finished() == [tag]
    with pytest.raises(CodecError):
        p.play(b"\x00")


def test_dtmf_replaces_audio_and_resumes_on_the_clock() -> None:
    p = pacer()
    run(p, until=START + 0.01)  # frame 0
    tag = p.send_dtmf("5", duration=0.1)
    p.play(bytes(3200))
    sent = run(p, until=START + 0.5)
    events = [(t, pk) for t, pk in sent if pk.payload_type == 101]
    audio = [(t, pk) for t, pk in sent if pk.payload_type == 0]
    assert [t for t, _ in events] == pytest.approx([START + 0.02 + x for x in (0, 0.05, 0.1, 0.15, 0.2)])
    assert {pk.timestamp for _, pk in events} == {ts_add(p.first_timestamp, 160)}  # frame 1's
    assert [pk.marker for _, pk in events] == [True] + [False] * 4
    assert [parse_telephone_event(pk.payload).end for _, pk in events] == [False, False, True, True, True]
    # Audio resumes in the first slot after the last end packet, with a marker, on the grid.
    first_audio_after = next((t, pk) for t, pk in audio if t > START + 0.01)
    assert first_audio_after[0] == pytest.approx(START + 0.24)
    assert first_audio_after[1].marker
    assert first_audio_after[1].timestamp == ts_add(p.first_timestamp, 160 * 12)
    assert tag in p.pop_finished()
    # Sequence numbers stay contiguous across the event.
    numbers = [pk.sequence for _, pk in sent]
    assert numbers == [seq_add(numbers[0], n) for n in range(len(numbers))]


def test_two_queued_digits_use_two_timestamps() -> None:
    p = pacer()
    p.send_dtmf("1")
    p.send_dtmf("1")
    events = [pk for _, pk in run(p, until=START + 1.0) if pk.payload_type == 101]
    assert len({pk.timestamp for pk in events}) == 2
    assert sum(pk.marker for pk in events) == 2


def test_bad_digit_is_refused_before_it_is_queued() -> None:
    with pytest.raises(ValueError):
        pacer().send_dtmf("Z")


@pytest.mark.parametrize(
    ("codec", "payload_type", "payload_bytes"),
    [(Pcma(), 8, 160), (G722Codec(), 9, 160)],
)
def test_other_codecs_step_the_timestamp_by_160(codec: Codec, payload_type: int, payload_bytes: int) -> None:
    p = pacer(codec)
    p.play(sine(1000, sample_rate=codec.sample_rate, seconds=0.1))
    sent = [pk for _, pk in run(p, until=START + 0.099)]
    assert len(sent) == 5
    assert {pk.payload_type for pk in sent} == {payload_type}
    assert {len(pk.payload) for pk in sent} == {payload_bytes}
    assert [pk.timestamp for pk in sent] == [ts_add(p.first_timestamp, 160 * n) for n in range(5)]


def test_dtmf_payload_type_is_configurable() -> None:
    p = pacer(dtmf_payload_type=96)
    p.send_dtmf("#")
    assert {pk.payload_type for _, pk in run(p, until=START + 0.3)} == {96, 0}


def test_on_hold_nothing_is_sent_and_the_stream_resumes_as_a_new_talkspurt() -> None:
    p = pacer()
    before = run(p, until=START + 0.199)
    p.set_muted(True)
    p.play(
        sine(440, sample_rate=8000, seconds=0.1)
    )  # a prompt during hold runs out unheard instead of waiting
    held = run(p, until=START + 0.399)
    p.set_muted(False)
    after = [pk for t, pk in run(p, until=START + 0.599) if t >= START + 0.4]
    assert len(before) == 10 and held == [] and len(after) == 10
    # No sequence numbers spent while silent, so the receiver sees no loss; the timestamp
    # jumps by the time on hold; the first packet back has the marker.
    assert after[0].sequence == seq_add(before[-1][1].sequence, 1)
    assert after[0].timestamp == ts_add(before[-1][1].timestamp, 160 * 11)
    assert after[0].marker and not any(pk.marker for pk in after[1:])
    assert p.pop_finished()  # the prompt finished while on hold
