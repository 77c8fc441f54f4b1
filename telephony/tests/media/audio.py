"""Signal helpers for the media tests: test tones and signal-to-noise ratios, in plain Python."""

from __future__ import annotations

import array
import math


def sine(frequency: float, *, sample_rate: int, seconds: float, amplitude: float = 10000.0) -> bytes:
    count = round(sample_rate * seconds)
    samples = array.array(
        "h", (round(amplitude * math.sin(2 * math.pi * frequency * i / sample_rate)) for i in range(count))
    )
    return samples.tobytes()


def samples(pcm: bytes) -> array.array[int]:
    values = array.array("h")
    values.frombytes(pcm)
    return values


def snr_db(reference: bytes, decoded: bytes, *, max_lag: int = 0) -> float:
    """SNR of `decoded` against `reference`, at the codec delay (0..max_lag samples) that fits best."""
    ref, out = samples(reference), samples(decoded)
    best = -math.inf
    for lag in range(max_lag + 1):
        n = min(len(ref), len(out) - lag)
        signal = sum(ref[i] ** 2 for i in range(n))
        noise = sum((ref[i] - out[i + lag]) ** 2 for i in range(n)) or 1
        best = max(best, 10 * math.log10(signal / noise))
    return best


def rms(pcm: bytes) -> float:
    values = samples(pcm)
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else 0.0


def dominant_frequency(pcm: bytes, *, sample_rate: int) -> float:
    """Frequency from the count of upward zero crossings: enough to tell a 1 kHz tone apart."""
    values = samples(pcm)
    crossings = sum(1 for a, b in zip(values, values[1:], strict=False) if a < 0 <= b)
    return crossings * sample_rate / len(values)
