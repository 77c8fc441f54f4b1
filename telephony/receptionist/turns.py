"""When does the caller start and stop talking? Frame-by-frame voice activity with hangover.

`TurnDetector.feed(frame, now)` takes 20 ms PCM frames and returns events:
- `SpeechStarted` after `start_after` of consecutive speech (a click or a breath is not a turn);
  during a prompt this is the barge-in signal;
- `SpeechEnded(pcm)` after `end_after` of consecutive non-speech, with the whole utterance
  (including `pre_roll` of audio before the start, so the first consonant is not clipped);
  `short` when less than `min_voiced` of it was speech: a cough or a click, not a request
  (the WebRTC VAD stretches a 0.1 s burst to ~0.2 s; the shortest answer, "no", is ~0.35 s).

The WebRTC VAD calls the first frames of a stream speech while it learns the noise, so the
first `warm_up` of audio is never speech.

The turn-end decision is the hangover: `end_after` (160 ms) of non-speech. The WebRTC VAD itself
keeps calling frames speech for ~100 ms after a voice stops, so turns end ~270 ms after the
caller's last sound (measured on synthesised callers; 200 ms of hangover would pass 300 ms).
A shorter hangover would cut requests at the pause between two words, unless what was said
is already a whole request: the receptionist sets `complete` while the recogniser's partial
hypothesis is a full sentence of the grammar ("sarah jones please"), and then `short_end_after`
(60 ms) of non-speech ends the turn. Frames are classified
by the WebRTC VAD (`webrtcvad`, a kept library with 8/16 kHz support) when it is installed, else
by an energy threshold over an adaptive noise floor.
"""

from __future__ import annotations

import audioop
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from telephony.receptionist.audio import FRAME_SECONDS, SAMPLE_WIDTH


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # when the speech began (the first speech frame), on the caller's clock
    pre_roll: bytes  # audio from before `at` up to and including the current frame


@dataclass(frozen=True)
class SpeechEnded:
    started_at: float
    at: float  # the end of the last speech frame: when the caller stopped talking
    pcm: bytes  # the utterance, pre-roll included
    voiced: float = 0.0  # seconds of it classified as speech
    forced: bool = False  # cut at max_utterance rather than by silence
    short: bool = False  # too little speech to be a request


TurnEvent = SpeechStarted | SpeechEnded


class FrameClassifier(Protocol):
    def is_speech(self, frame: bytes) -> bool: ...


class WebRtcClassifier:
    def __init__(self, sample_rate: int, aggressiveness: int = 2) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)
        self._rate = sample_rate

    def is_speech(self, frame: bytes) -> bool:
        return self._vad.is_speech(frame, self._rate)


class EnergyClassifier:
    """Speech is `margin_db` above a noise floor that follows the quietest recent frames."""

    def __init__(self, margin_db: float = 12.0, floor_rms: float = 30.0) -> None:
        self.margin = 10 ** (margin_db / 20)
        self.floor = floor_rms

    def is_speech(self, frame: bytes) -> bool:
        level = max(audioop.rms(frame, SAMPLE_WIDTH), 1)
        # The floor drops fast to quieter frames and creeps up slowly, so speech does not lift it.
        self.floor = level if level < self.floor else self.floor * 0.995 + level * 0.005
        return level > max(self.floor, 30.0) * self.margin


def default_classifier(sample_rate: int) -> FrameClassifier:
    try:
        return WebRtcClassifier(sample_rate)
    except ImportError:
        return EnergyClassifier()


class TurnDetector:
    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        classifier: FrameClassifier | None = None,
        start_after: float = 0.1,
        end_after: float = 0.16,
        short_end_after: float = 0.06,
        pre_roll: float = 0.3,
        max_utterance: float = 10.0,
        warm_up: float = 0.2,
        min_voiced: float = 0.3,
    ) -> None:
        self.sample_rate = sample_rate
        self.classifier = classifier or default_classifier(sample_rate)
        self._start_frames = max(1, round(start_after / FRAME_SECONDS))
        self.end_after = end_after
        self.min_voiced = min_voiced
        self._end_frames = max(1, round(end_after / FRAME_SECONDS))
        self._short_end_frames = max(1, round(short_end_after / FRAME_SECONDS))
        self.complete = False  # the words so far are a whole request: a short hangover will do
        self.last_hangover = end_after  # the hangover that ended the last turn
        self._max_frames = round(max_utterance / FRAME_SECONDS)
        self._warm_up_frames = round(warm_up / FRAME_SECONDS)
        self._frames_seen = 0
        self._voiced_frames = 0
        self._recent: deque[bytes] = deque(maxlen=max(round(pre_roll / FRAME_SECONDS), self._start_frames))
        self._voiced_run = 0
        self._quiet_run = 0
        self._utterance: list[bytes] = []
        self._started_at = 0.0
        self._last_voiced_end = 0.0
        self.in_speech = False

    def feed(self, frame: bytes, now: float) -> list[TurnEvent]:
        """`now` is the time at the end of `frame` (when it was received)."""
        self._frames_seen += 1
        voiced = self.classifier.is_speech(frame) and self._frames_seen > self._warm_up_frames
        if not self.in_speech:
            self._recent.append(frame)
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run < self._start_frames:
                return []
            self.in_speech = True
            self._quiet_run = 0
            self._started_at = now - self._start_frames * FRAME_SECONDS
            self._last_voiced_end = now
            self._utterance = list(self._recent)
            self._voiced_frames = self._voiced_run
            self._recent.clear()
            return [SpeechStarted(at=self._started_at, pre_roll=b"".join(self._utterance))]

        self._utterance.append(frame)
        if voiced:
            self._quiet_run = 0
            self._voiced_frames += 1
            self._last_voiced_end = now
        else:
            self._quiet_run += 1
        if self._quiet_run >= (self._short_end_frames if self.complete else self._end_frames):
            self.last_hangover = self._quiet_run * FRAME_SECONDS
            return [self._end(forced=False)]
        if len(self._utterance) >= self._max_frames:
            return [self._end(forced=True)]
        return []

    def reset(self) -> None:
        """Forget a turn in progress (the dialogue stopped listening)."""
        self.in_speech = False
        self.complete = False
        self._voiced_run = 0
        self._utterance = []
        self._recent.clear()

    def _end(self, *, forced: bool) -> SpeechEnded:
        event = SpeechEnded(
            started_at=self._started_at,
            at=self._last_voiced_end,
            pcm=b"".join(self._utterance),
            voiced=self._voiced_frames * FRAME_SECONDS,
            forced=forced,
            short=self._voiced_frames * FRAME_SECONDS < self.min_voiced,
        )
        self.reset()
        return event
