from __future__ import annotations

import io
import struct
import wave

import pytest

from telephony.media.codecs import (
    CODEC_PREFERENCE,
    Codec,
    G722Codec,
    Pcma,
    Pcmu,
    Resampler,
    codec_by_name,
    codec_by_payload_type,
    pcm_from_wav,
    resample,
)
from telephony.media.errors import CodecError
from telephony.tests.media.audio import dominant_frequency, rms, samples, sine, snr_db


def pcm(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}h", *values)


# ITU-T G.711 code words: silence is 0xFF in µ-law and 0xD5 in A-law (even bits inverted).
@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [(0, 0xFF, 0xD5), (32767, 0x80, 0xAA), (-32768, 0x00, 0x2A), (1000, 0xCE, 0xFA), (-1000, 0x4E, 0x7A)],
)
def test_g711_known_code_words(sample: int, ulaw: int, alaw: int) -> None:
    assert Pcmu().encode(pcm(sample)) == bytes([ulaw])
    assert Pcma().encode(pcm(sample)) == bytes([alaw])


def test_g711_known_decodes() -> None:
    assert samples(Pcmu().decode(b"\xff\x00")).tolist() == [0, -32124]
    assert samples(Pcma().decode(b"\xd5\x55")).tolist() == [8, -8]


@pytest.mark.parametrize(
    ("codec", "frequency", "min_snr_db", "max_lag"),
    [
        (Pcmu(), 1000, 35.0, 0),
        (Pcma(), 1000, 35.0, 0),
        # G.722's QMF filters delay the signal; compare at the best-fitting lag.
        (G722Codec(), 1000, 35.0, 64),
        (G722Codec(), 5000, 15.0, 64),  # wideband: a tone G.711 could not carry at all
    ],
    ids=["PCMU", "PCMA", "G722-1k", "G722-5k"],
)
def test_sine_survives_encode_then_decode(
    codec: Codec, frequency: int, min_snr_db: float, max_lag: int
) -> None:
    tone = sine(frequency, sample_rate=codec.sample_rate, seconds=0.2)
    decoded = b"".join(
        codec.decode(codec.encode(tone[i : i + codec.frame_bytes]))
        for i in range(0, len(tone), codec.frame_bytes)
    )
    assert len(decoded) == len(tone)
    assert snr_db(tone, decoded, max_lag=max_lag) > min_snr_db


def test_g711_snr_collapses_when_the_signal_is_wrong() -> None:
    # The SNR helper must be able to fail: decoding the wrong law is far from the input.
    tone = sine(1000, sample_rate=8000, seconds=0.1)
    assert snr_db(tone, Pcma().decode(Pcmu().encode(tone))) < 10


@pytest.mark.parametrize(
    ("codec", "sample_rate", "frame_samples", "frame_bytes", "payload_bytes", "step", "payload_type"),
    [
        (Pcmu(), 8000, 160, 320, 160, 160, 0),
        (Pcma(), 8000, 160, 320, 160, 160, 8),
        (G722Codec(), 16000, 320, 640, 160, 160, 9),  # 16 kHz audio on an 8000 Hz RTP clock
    ],
)
def test_frame_geometry(
    codec: Codec,
    sample_rate: int,
    frame_samples: int,
    frame_bytes: int,
    payload_bytes: int,
    step: int,
    payload_type: int,
) -> None:
    assert codec.sample_rate == sample_rate
    assert codec.rtp_clock_rate == 8000
    assert codec.frame_samples == frame_samples
    assert codec.frame_bytes == frame_bytes
    assert codec.timestamp_step == step
    assert codec.payload_type == payload_type
    payload = codec.encode(bytes(frame_bytes))
    assert len(payload) == payload_bytes
    assert len(codec.decode(payload)) == frame_bytes


def test_g722_instances_keep_separate_state() -> None:
    tone = sine(1000, sample_rate=16000, seconds=0.04)
    warmed, fresh = G722Codec(), G722Codec()
    warmed.encode(tone)
    assert warmed.encode(tone) != fresh.encode(tone)  # ADPCM state carried between frames


@pytest.mark.parametrize("codec", [Pcmu(), Pcma(), G722Codec()], ids=lambda c: c.name)
def test_odd_byte_counts_are_rejected(codec: Codec) -> None:
    with pytest.raises(CodecError):
        codec.encode(b"\x00\x00\x00")


def test_g722_rejects_an_odd_number_of_samples() -> None:
    with pytest.raises(CodecError):
        G722Codec().encode(pcm(1, 2, 3))


# --- registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [("PCMU", Pcmu), ("pcma", Pcma), ("G722/8000", G722Codec), ("g722", G722Codec)],
)
def test_codec_by_name(name: str, cls: type[Codec]) -> None:
    assert type(codec_by_name(name)) is cls


@pytest.mark.parametrize(("payload_type", "cls"), [(0, Pcmu), (8, Pcma), (9, G722Codec)])
def test_codec_by_payload_type(payload_type: int, cls: type[Codec]) -> None:
    assert type(codec_by_payload_type(payload_type)) is cls


def test_registry_hands_out_new_instances() -> None:
    assert codec_by_name("G722") is not codec_by_name("G722")


@pytest.mark.parametrize("name", ["G729", "opus", "", "telephone-event/8000"])
def test_unknown_codec_names_raise(name: str) -> None:
    with pytest.raises(CodecError):
        codec_by_name(name)


def test_unknown_payload_type_raises() -> None:
    with pytest.raises(CodecError):
        codec_by_payload_type(18)


def test_preference_follows_the_product_facts() -> None:
    assert CODEC_PREFERENCE == ("PCMU", "PCMA", "G722")


# --- resampling ---------------------------------------------------------------------------


def test_upsampling_doubles_length_and_keeps_the_tone() -> None:
    tone = sine(440, sample_rate=8000, seconds=0.5)
    up = resample(tone, 8000, 16000)
    assert abs(len(up) - 2 * len(tone)) <= 4
    assert dominant_frequency(up, sample_rate=16000) == pytest.approx(440, abs=5)


def test_downsampling_halves_length_and_keeps_the_tone() -> None:
    tone = sine(440, sample_rate=16000, seconds=0.5)
    down = resample(tone, 16000, 8000)
    assert abs(len(down) - len(tone) // 2) <= 4
    assert dominant_frequency(down, sample_rate=8000) == pytest.approx(440, abs=5)


def test_streaming_resampler_matches_one_shot() -> None:
    tone = sine(300, sample_rate=8000, seconds=0.2)
    streamer = Resampler(8000, 16000)
    chunked = b"".join(streamer.convert(tone[i : i + 320]) for i in range(0, len(tone), 320))
    assert chunked == resample(tone, 8000, 16000)


def test_same_rate_is_a_copy() -> None:
    assert Resampler(8000, 8000).convert(b"\x01\x00") == b"\x01\x00"


# --- WAV ----------------------------------------------------------------------------------


def wav_file(frames: bytes, *, rate: int, channels: int, width: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return buffer.getvalue()


def test_stereo_44k_wav_becomes_mono_8k() -> None:
    mono = samples(sine(1000, sample_rate=44100, seconds=0.5))
    stereo = struct.pack(f"<{2 * len(mono)}h", *[v for s in mono for v in (s, s)])
    out = pcm_from_wav(wav_file(stereo, rate=44100, channels=2, width=2), 8000)
    assert abs(len(out) - 2 * 4000) <= 8
    assert dominant_frequency(out, sample_rate=8000) == pytest.approx(1000, abs=10)
    assert rms(out) == pytest.approx(10000 / 2**0.5, rel=0.1)


def test_8bit_unsigned_wav_is_centred() -> None:
    silence = bytes([128]) * 800  # unsigned 8-bit silence
    out = pcm_from_wav(wav_file(silence, rate=8000, channels=1, width=1), 8000)
    assert len(out) == 1600
    assert rms(out) == 0


def test_16k_wav_for_g722_keeps_its_rate() -> None:
    tone = sine(1000, sample_rate=16000, seconds=0.1)
    assert pcm_from_wav(wav_file(tone, rate=16000, channels=1, width=2), 16000) == tone


@pytest.mark.parametrize("data", [b"", b"RIFF\x00\x00", b"not a wav file at all" * 10])
def test_garbage_wav_raises_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        pcm_from_wav(data, 8000)


def test_more_than_two_channels_is_refused() -> None:
    with pytest.raises(CodecError):
        pcm_from_wav(wav_file(bytes(48), rate=8000, channels=3, width=2), 8000)
