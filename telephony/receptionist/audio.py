"""PCM helpers for the receptionist: WAV parsing, band-limiting and rate conversion.

PCM here is what the media layer uses: signed 16-bit, native byte order, mono. Calls carry 8 kHz
(G.711) or 16 kHz (G.722); the recogniser wants 16 kHz; espeak-ng writes 22050 Hz.

`audioop.ratecv` alone interpolates without an anti-aliasing filter: taking 22 kHz speech down to
8 kHz that way folds everything above 4 kHz back into the telephone band as hiss. So
`downsample` low-passes first with a windowed-sinc FIR. The FIR runs on `audioop` primitives
(one multiply-and-add pass over the whole clip per tap, in C), which keeps this package free of
numpy; prompts are rendered once and cached, so the ~20 ms it takes per sentence is paid once.
"""

from __future__ import annotations

import audioop
import math
import struct
from functools import lru_cache

from telephony.media.codecs import Resampler

SAMPLE_WIDTH = 2
FRAME_SECONDS = 0.02
_WORK_WIDTH = 4  # the FIR accumulates in 32 bits
_HEADROOM = 16  # 16-bit samples scaled to 2**12 per unit: room for partial sums, no overflow


def frame_bytes(sample_rate: int) -> int:
    """Bytes in one 20 ms frame at `sample_rate`."""
    return int(sample_rate * FRAME_SECONDS) * SAMPLE_WIDTH


def duration(pcm: bytes, sample_rate: int) -> float:
    return len(pcm) / SAMPLE_WIDTH / sample_rate


def frames(pcm: bytes, sample_rate: int) -> list[bytes]:
    """Cut PCM into whole 20 ms frames; the last one is padded with silence."""
    size = frame_bytes(sample_rate)
    if len(pcm) % size:
        pcm = pcm + bytes(size - len(pcm) % size)
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def wav_pcm(wav: bytes) -> tuple[bytes, int]:
    """(PCM, sample rate) of a 16-bit mono RIFF/WAVE file.

    espeak-ng's `--stdout` writes the header before it knows the length (the sizes say 2 GB), so
    the `data` chunk is taken to run to the end of the bytes rather than trusting its size."""
    if len(wav) < 12 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    offset = 12
    rate = None
    while offset + 8 <= len(wav):
        chunk, size = struct.unpack_from("<4sI", wav, offset)
        body = offset + 8
        if chunk == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", wav, body)
            if fmt != 1 or channels != 1 or bits != 16:
                raise ValueError(f"need 16-bit mono PCM WAV, got format {fmt}, {channels} ch, {bits} bit")
        elif chunk == b"data":
            if rate is None:
                raise ValueError("WAV data before its format")
            pcm = wav[body : min(len(wav), body + size)]
            return pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH], rate
        offset = body + size + (size & 1)
    raise ValueError("WAV file without a data chunk")


@lru_cache(maxsize=16)
def _lowpass_taps(sample_rate: int, cutoff: float, count: int) -> tuple[float, ...]:
    """Hamming-windowed sinc, unity gain at DC."""
    middle = (count - 1) / 2
    fc = cutoff / sample_rate
    taps = []
    for n in range(count):
        x = n - middle
        sinc = 2 * fc if x == 0 else math.sin(2 * math.pi * fc * x) / (math.pi * x)
        taps.append(sinc * (0.54 - 0.46 * math.cos(2 * math.pi * n / (count - 1))))
    total = sum(taps)
    return tuple(t / total for t in taps)


def lowpass(pcm: bytes, *, sample_rate: int, cutoff: float, taps: int = 101) -> bytes:
    """Remove what lies above `cutoff` Hz (about 3.3 * rate / taps of transition band)."""
    if not pcm:
        return b""
    coefficients = _lowpass_taps(sample_rate, cutoff, taps)
    work = audioop.mul(audioop.lin2lin(pcm, SAMPLE_WIDTH, _WORK_WIDTH), _WORK_WIDTH, 1 / _HEADROOM)
    half = taps // 2 * _WORK_WIDTH
    padded = bytes(half) + work + bytes(half)
    total = bytes(len(work))
    for index, coefficient in enumerate(coefficients):
        start = index * _WORK_WIDTH
        shifted = padded[start : start + len(work)]
        total = audioop.add(total, audioop.mul(shifted, _WORK_WIDTH, coefficient), _WORK_WIDTH)
    return audioop.lin2lin(audioop.mul(total, _WORK_WIDTH, _HEADROOM), _WORK_WIDTH, SAMPLE_WIDTH)


def downsample(pcm: bytes, *, from_rate: int, to_rate: int) -> bytes:
    """Band-limit to 90 % of the new Nyquist frequency, then convert the rate."""
    if to_rate >= from_rate:
        return resample(pcm, from_rate=from_rate, to_rate=to_rate)
    filtered = lowpass(pcm, sample_rate=from_rate, cutoff=0.45 * to_rate)
    return resample(filtered, from_rate=from_rate, to_rate=to_rate)


def resample(pcm: bytes, *, from_rate: int, to_rate: int) -> bytes:
    return Resampler(from_rate, to_rate).convert(pcm)


def rms_dbfs(pcm: bytes) -> float:
    """Loudness relative to a full-scale square wave; -inf for digital silence."""
    if not pcm:
        return -math.inf
    rms = audioop.rms(pcm, SAMPLE_WIDTH)
    return 20 * math.log10(rms / 32768) if rms else -math.inf
