"""Synthesised callers for the tests and the benchmark: espeak-ng speech through a phone line.

A caller's request is spoken by espeak-ng (any voice and speed; by default a clear 130 words a
minute, which the recogniser hears well enough to transfer without asking), band-limited to
8 kHz, given a floor of line noise, and passed through a G.711 round trip (µ-law or A-law, with
the media layer's own codecs): what the receptionist receives from a real call, minus the
network. Generation is blocking; the WAV can be kept (e.g. under a test's tmp_path).
"""

from __future__ import annotations

import array
import audioop
import random
import subprocess
from functools import lru_cache
from pathlib import Path

from telephony.media.codecs import Codec, Pcma, Pcmu
from telephony.receptionist.audio import downsample, wav_pcm

LINE_RATE = 8000


def synthesise(text: str, *, voice: str = "en-us", speed: int = 130, wav_path: Path | None = None) -> bytes:
    """espeak-ng's WAV for `text` (kept at `wav_path` if given)."""
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "--stdin", "-v", voice, "-s", str(speed)],
        input=text.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    if wav_path is not None:
        wav_path.write_bytes(wav)
    return wav


_NOISE_RMS = 1000.0
_NOISE_SECONDS = 8


@lru_cache(maxsize=1)
def _unit_noise() -> bytes:
    """Gaussian noise of RMS 1000, made once; `add_noise` takes a seeded slice of it and scales
    it, so adding noise costs a few C calls rather than a Python loop per sample."""
    rng = random.Random(1234)
    count = _NOISE_SECONDS * LINE_RATE
    return array.array(
        "h", (max(-32768, min(32767, round(rng.gauss(0.0, _NOISE_RMS)))) for _ in range(count))
    ).tobytes()


def add_noise(pcm: bytes, *, rms: float, seed: int = 0) -> bytes:
    """White noise of the given RMS (in 16-bit sample units; 30 is a quiet line)."""
    if rms <= 0 or not pcm:
        return pcm
    noise = _unit_noise()
    start = 2 * (random.Random(seed).randrange(len(noise) // 2))
    needed = len(pcm)
    looped = (noise[start:] + noise * (needed // len(noise) + 1))[:needed]
    return audioop.add(pcm, audioop.mul(looped, 2, rms / _NOISE_RMS), 2)


def through_line(pcm8k: bytes, *, law: str = "ulaw") -> bytes:
    """A G.711 encode/decode round trip: the quantisation a call adds."""
    codec: Codec = Pcmu() if law == "ulaw" else Pcma()
    return codec.decode(codec.encode(pcm8k))


def caller_audio(
    text: str,
    *,
    voice: str = "en-us",
    speed: int = 130,
    law: str = "ulaw",
    noise_rms: float = 20.0,
    lead_silence: float = 0.3,
    trail_silence: float = 0.0,
    seed: int = 0,
    wav_path: Path | None = None,
) -> bytes:
    """8 kHz PCM of a caller saying `text`, as decoded from the call's RTP."""
    speech = spoken(text, voice=voice, speed=speed, wav_path=wav_path)
    return on_the_line(
        speech,
        law=law,
        noise_rms=noise_rms,
        lead_silence=lead_silence,
        trail_silence=trail_silence,
        seed=seed,
    )


def spoken(text: str, *, voice: str = "en-us", speed: int = 130, wav_path: Path | None = None) -> bytes:
    """The clean voice, band-limited to 8 kHz (the slow part: espeak-ng and the filter)."""
    pcm, rate = wav_pcm(synthesise(text, voice=voice, speed=speed, wav_path=wav_path))
    return downsample(pcm, from_rate=rate, to_rate=LINE_RATE)


def on_the_line(
    speech: bytes,
    *,
    law: str = "ulaw",
    noise_rms: float = 20.0,
    lead_silence: float = 0.3,
    trail_silence: float = 0.0,
    seed: int = 0,
) -> bytes:
    """Clean 8 kHz speech as the call delivers it: padded, with line noise, through G.711."""
    padded = silence(lead_silence) + speech + silence(trail_silence)
    return through_line(add_noise(padded, rms=noise_rms, seed=seed), law=law)


def silence(seconds: float, *, sample_rate: int = LINE_RATE) -> bytes:
    return bytes(2 * round(seconds * sample_rate))


def line_noise(seconds: float, *, rms: float = 20.0, law: str = "ulaw", seed: int = 0) -> bytes:
    """What an idle line sounds like: the noise floor through the codec."""
    return through_line(add_noise(silence(seconds), rms=rms, seed=seed), law=law)


def speech_end(pcm: bytes, *, sample_rate: int = LINE_RATE, threshold: int = 300) -> float:
    """Seconds into `pcm` where the last sample louder than `threshold` is: when the caller
    really stopped talking (the benchmark measures decisions from here)."""
    samples = array.array("h")
    samples.frombytes(pcm)
    for index in range(len(samples) - 1, -1, -1):
        if abs(samples[index]) > threshold:
            return (index + 1) / sample_rate
    return 0.0
