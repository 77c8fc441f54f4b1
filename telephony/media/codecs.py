"""Audio codecs for RTP: PCMU, PCMA (G.711) and G.722, plus resampling and WAV loading.

PCM everywhere in the media layer means signed 16-bit, native byte order (little-endian on every
machine we run on), mono, at the codec's `sample_rate`. G.711 comes from the standard library's
`audioop` (deprecated in 3.11, removed in 3.13, where the `audioop-lts` package installs a
drop-in module of the same name); G.722 from the `g722` package (module `G722`, sippy's libg722).
No DSP is written here.
"""

from __future__ import annotations

import array
import audioop
import io
import wave
from abc import ABC, abstractmethod
from typing import ClassVar

import G722

from telephony.media.errors import CodecError

FRAME_DURATION = 0.02  # seconds of audio per RTP packet (ptime 20)
SAMPLE_WIDTH = 2  # bytes per PCM sample


class Codec(ABC):
    """One direction-agnostic codec instance. Instances may hold state (G.722 does):
    create one per call, never share one between calls."""

    name: ClassVar[str]
    payload_type: ClassVar[int]
    rtp_clock_rate: ClassVar[int]
    sample_rate: ClassVar[int]

    @property
    def frame_samples(self) -> int:
        """PCM samples in one 20 ms frame, at `sample_rate`."""
        return int(self.sample_rate * FRAME_DURATION)

    @property
    def frame_bytes(self) -> int:
        """PCM bytes in one 20 ms frame."""
        return self.frame_samples * SAMPLE_WIDTH

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp advance per 20 ms frame, at `rtp_clock_rate` (160 for all three)."""
        return int(self.rtp_clock_rate * FRAME_DURATION)

    @abstractmethod
    def encode(self, pcm: bytes) -> bytes:
        """PCM (see module doc) to an RTP payload."""

    @abstractmethod
    def decode(self, payload: bytes) -> bytes:
        """An RTP payload to PCM."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}/{self.rtp_clock_rate} pt={self.payload_type}>"


class Pcmu(Codec):
    name = "PCMU"
    payload_type = 0
    rtp_clock_rate = 8000
    sample_rate = 8000

    def encode(self, pcm: bytes) -> bytes:
        _check_whole_samples(pcm)
        return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)

    def decode(self, payload: bytes) -> bytes:
        return audioop.ulaw2lin(payload, SAMPLE_WIDTH)


class Pcma(Codec):
    name = "PCMA"
    payload_type = 8
    rtp_clock_rate = 8000
    sample_rate = 8000

    def encode(self, pcm: bytes) -> bytes:
        _check_whole_samples(pcm)
        return audioop.lin2alaw(pcm, SAMPLE_WIDTH)

    def decode(self, payload: bytes) -> bytes:
        return audioop.alaw2lin(payload, SAMPLE_WIDTH)


class G722Codec(Codec):
    """G.722 at 64 kbit/s: 16 kHz audio, but an 8000 Hz RTP clock (RFC 3551 section 4.5.2 keeps
    the clock of the original, erroneous RFC 1890), so 320 samples advance the timestamp by 160.
    The ADPCM encoder and decoder carry state from frame to frame."""

    name = "G722"
    payload_type = 9
    rtp_clock_rate = 8000
    sample_rate = 16000

    def __init__(self) -> None:
        # use_numpy=False: decode returns array('h') whether or not G722-numpy is installed.
        self._state = G722.G722(self.sample_rate, 64000, use_numpy=False)

    def encode(self, pcm: bytes) -> bytes:
        # Each payload byte carries two samples, so a whole number of sample pairs is needed.
        if len(pcm) % (2 * SAMPLE_WIDTH):
            raise CodecError(f"G.722 needs an even number of samples, got {len(pcm)} bytes")
        return self._state.encode(memoryview(pcm).cast("h"))

    def decode(self, payload: bytes) -> bytes:
        samples: array.array[int] = self._state.decode(bytes(payload))
        return samples.tobytes()


def _check_whole_samples(pcm: bytes) -> None:
    if len(pcm) % SAMPLE_WIDTH:
        raise CodecError(f"PCM must be whole 16-bit samples, got {len(pcm)} bytes")


# --- registry -----------------------------------------------------------------------------

# Offer order from the product facts: G.711 µ-law, then A-law, then G.722.
CODEC_PREFERENCE: tuple[str, ...] = ("PCMU", "PCMA", "G722")
_CODECS: dict[str, type[Codec]] = {cls.name: cls for cls in (Pcmu, Pcma, G722Codec)}
_BY_PAYLOAD_TYPE: dict[int, type[Codec]] = {cls.payload_type: cls for cls in _CODECS.values()}


def codec_by_name(name: str) -> Codec:
    """A new codec for an SDP encoding name such as "PCMU", "pcma" or "G722/8000"."""
    cls = _CODECS.get(name.split("/", 1)[0].upper())
    if cls is None:
        raise CodecError(f"unsupported codec {name!r}")
    return cls()


def codec_by_payload_type(payload_type: int) -> Codec:
    """A new codec for a static RTP payload type (0, 8, 9)."""
    cls = _BY_PAYLOAD_TYPE.get(payload_type)
    if cls is None:
        raise CodecError(f"unsupported payload type {payload_type}")
    return cls()


# --- sample-rate conversion and WAV -------------------------------------------------------


class Resampler:
    """Streaming rate conversion (e.g. 8 kHz call audio to 16 kHz for speech recognition).

    Keeps the converter's state between chunks, so frames joined together sound like one signal;
    use one instance per stream and direction.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._state: tuple[object, ...] | None = None

    def convert(self, pcm: bytes) -> bytes:
        if self.from_rate == self.to_rate:
            return bytes(pcm)
        _check_whole_samples(pcm)
        out, self._state = audioop.ratecv(pcm, SAMPLE_WIDTH, 1, self.from_rate, self.to_rate, self._state)
        return out


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """One-shot rate conversion of a whole clip."""
    return Resampler(from_rate, to_rate).convert(pcm)


def pcm_from_wav(wav_bytes: bytes, sample_rate: int) -> bytes:
    """Decode a PCM WAV file's bytes to mono 16-bit PCM at `sample_rate`."""
    try:
        with wave.open(io.BytesIO(wav_bytes), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise CodecError(f"not a PCM WAV file: {exc}") from exc
    if channels not in (1, 2):
        raise CodecError(f"WAV with {channels} channels; only mono and stereo are supported")
    if width == 1:
        frames = audioop.bias(frames, 1, -128)  # 8-bit WAV is unsigned; audioop works on signed
    if width != SAMPLE_WIDTH:
        frames = audioop.lin2lin(frames, width, SAMPLE_WIDTH)
    if channels == 2:
        frames = audioop.tomono(frames, SAMPLE_WIDTH, 0.5, 0.5)
    return resample(frames, rate, sample_rate)
