import array
import math
import struct

import pytest

from telephony.receptionist.audio import downsample, duration, frames, lowpass, rms_dbfs, wav_pcm


def tone(frequency: float, *, rate: int, seconds: float = 0.5) -> bytes:
    count = int(rate * seconds)
    return array.array(
        "h", (int(8000 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(count))
    ).tobytes()


def level(pcm: bytes) -> float:
    return rms_dbfs(pcm[len(pcm) // 4 :])  # past the filter's start-up


def test_lowpass_keeps_the_voice_band_and_removes_what_would_alias():
    voice = lowpass(tone(1000, rate=22050), sample_rate=22050, cutoff=3600)
    hiss = lowpass(tone(6000, rate=22050), sample_rate=22050, cutoff=3600)
    assert level(voice) == pytest.approx(level(tone(1000, rate=22050)), abs=0.5)
    assert level(hiss) < level(tone(6000, rate=22050)) - 40


def test_downsample_to_the_phone_rate_does_not_fold_high_frequencies_back():
    folded = downsample(tone(5000, rate=22050), from_rate=22050, to_rate=8000)  # would alias to 3 kHz
    kept = downsample(tone(2000, rate=22050), from_rate=22050, to_rate=8000)
    assert len(kept) == 2 * 4000  # half a second at 8 kHz
    assert level(kept) > -16
    assert level(folded) < level(kept) - 40


def test_wav_with_espeaks_unknown_length_reads_to_the_end():
    pcm = tone(440, rate=22050, seconds=0.1)
    header = b"RIFF" + struct.pack("<I", 0x7FFFFFFF) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16)
    data = b"data" + struct.pack("<I", 0x7FFFF000) + pcm
    assert wav_pcm(header + fmt + data) == (pcm, 22050)


def test_wav_that_is_not_16_bit_mono_is_refused():
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 8000, 32000, 4, 16)
    with pytest.raises(ValueError, match="16-bit mono"):
        wav_pcm(b"RIFF" + struct.pack("<I", 36) + b"WAVE" + fmt + b"data" + struct.pack("<I", 0))
    with pytest.raises(ValueError):
        wav_pcm(b"not a wav")


def test_frames_are_20_ms_and_the_last_is_padded():
    pieces = frames(bytes(2 * 250), 8000)  # 250 samples: one full frame of 160, one partial
    assert [len(p) for p in pieces] == [320, 320]
    assert duration(b"".join(pieces), 8000) == pytest.approx(0.04)
