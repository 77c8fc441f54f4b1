"""An in-memory `CallControl` with a scripted caller, for the tests and the benchmark.

The caller waits for the receptionist to answer, then says (or keys in) each turn of its script
a short pause after the receptionist stops talking — or barges in part-way through a prompt.
Instead of a fixed script, `respond(prompts)` may choose each next turn from what was played so
far (the benchmark's caller answers "Did you want …?" truthfully). Between turns the line
carries its noise floor.

Two clocks: virtual (each frame advances it by 20 ms, so a test of a two-minute call takes as
long as the computing does) or real time (frames paced to the 20 ms grid, as from an RTP session;
the benchmark's latencies are measured on it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from telephony.receptionist.audio import FRAME_SECONDS, SAMPLE_WIDTH, frame_bytes
from telephony.receptionist.phoneline import line_noise, speech_end
from telephony.receptionist.receptionist import TransferOutcome

DIGIT_SPACING = 0.25


@dataclass(frozen=True)
class CallerTurn:
    pcm: bytes = b""  # what the caller says, at the call's sample rate
    digits: str = ""  # ... or keys in
    pause: float = 0.6  # after the receptionist stops talking
    barge_in_after: float | None = None  # start this far into the receptionist's prompt instead
    text: str = ""  # for reports


@dataclass
class PlayedPrompt:
    pcm: bytes
    started_at: float
    ended_at: float | None = None
    completed: bool = False


@dataclass
class _Playing:
    pcm: bytes
    future: asyncio.Future[bool]
    record: PlayedPrompt | None = None


@dataclass
class ScriptedCall:
    turns: list[CallerTurn]
    sample_rate: int = 8000
    realtime: bool = False
    max_seconds: float = 120.0
    noise_rms: float = 20.0
    transfer_outcome: Callable[[str], TransferOutcome] = lambda extension: TransferOutcome(accepted=True)
    respond: Callable[[list[PlayedPrompt]], CallerTurn | None] | None = None
    # What happened:
    played: list[PlayedPrompt] = field(default_factory=list)
    transfers: list[str] = field(default_factory=list)
    hung_up: bool = False
    speech_ended_at: list[float] = field(default_factory=list)  # when each spoken turn's voice stopped

    def __post_init__(self) -> None:
        self._script = deque(self.turns)
        self._now = 0.0
        self._start: float | None = None
        self._queue: deque[_Playing] = deque()
        self._digits: asyncio.Queue[str | None] = asyncio.Queue()
        self._speaking: tuple[bytes, int] | None = None
        self._answered = False  # the receptionist has said something since the caller last spoke
        self._last_prompt_end = 0.0
        self._noise = line_noise(1.0, rms=self.noise_rms, seed=7)
        if self.sample_rate != 8000:
            from telephony.receptionist.audio import resample

            self._noise = resample(self._noise, from_rate=8000, to_rate=self.sample_rate)
        self._noise_offset = 0
        self._ended = False

    # --- CallControl ---------------------------------------------------------------------------

    def clock(self) -> float:
        """Seconds since the call's audio started: frames heard, or wall time when real-time."""
        if self.realtime and self._start is not None:
            return asyncio.get_running_loop().time() - self._start
        return self._now

    def play(self, pcm: bytes) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._ended:
            future.set_result(False)
            return future
        self._queue.append(_Playing(pcm, future))
        return future

    def stop_playback(self) -> None:
        while self._queue:
            playing = self._queue.popleft()
            if playing.record is not None:
                playing.record.ended_at = self._now
                self._last_prompt_end = self._now
            if not playing.future.done():
                playing.future.set_result(False)

    async def audio_frames(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        size = frame_bytes(self.sample_rate)
        frame_index = 0
        while not self._ended and self._now < self.max_seconds:
            frame_index += 1
            self._now = frame_index * FRAME_SECONDS
            if self.realtime:
                delay = self._start + self._now - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # let the receptionist's other tasks run
            self._advance_playback()
            yield self._caller_frame(size)
        self._end()

    async def dtmf(self) -> AsyncIterator[str]:
        while (digit := await self._digits.get()) is not None:
            yield digit

    async def transfer(self, extension: str) -> TransferOutcome:
        self.transfers.append(extension)
        await asyncio.sleep(0)
        return self.transfer_outcome(extension)

    async def hangup(self) -> None:
        self.hung_up = True
        self._end()

    # --- the simulation ------------------------------------------------------------------------

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.stop_playback()
            self._digits.put_nowait(None)

    @property
    def playing(self) -> bool:
        return bool(self._queue)

    def _advance_playback(self) -> None:
        while self._queue:
            head = self._queue[0]
            if head.record is None:
                head.record = PlayedPrompt(head.pcm, started_at=self._now - FRAME_SECONDS)
                self.played.append(head.record)
                self._answered = True
            seconds = len(head.pcm) / SAMPLE_WIDTH / self.sample_rate
            if self._now < head.record.started_at + seconds:
                return
            head.record.ended_at = head.record.started_at + seconds
            head.record.completed = True
            self._last_prompt_end = head.record.ended_at
            self._queue.popleft()
            if not head.future.done():
                head.future.set_result(True)

    def _caller_frame(self, size: int) -> bytes:
        wants_reply = self._speaking is None and not self._script and self._answered and not self.playing
        if wants_reply and self.respond is not None and (turn := self.respond(self.played)) is not None:
            self._script.append(turn)
        if self._speaking is None and self._script and self._turn_due(self._script[0]):
            turn = self._script.popleft()
            self._answered = False
            if turn.pcm:
                self._speaking = (turn.pcm, 0)
                self.speech_ended_at.append(self._now + speech_end(turn.pcm, sample_rate=self.sample_rate))
            for index, digit in enumerate(turn.digits):
                asyncio.get_running_loop().call_later(
                    index * DIGIT_SPACING * (1 if self.realtime else 0), self._digits.put_nowait, digit
                )
        if self._speaking is not None:
            pcm, offset = self._speaking
            frame = pcm[offset : offset + size]
            self._speaking = (pcm, offset + size) if offset + size < len(pcm) else None
            if len(frame) == size:
                return frame
            return frame + self._noise_frame(size)[len(frame) :]
        return self._noise_frame(size)

    def _turn_due(self, turn: CallerTurn) -> bool:
        if turn.barge_in_after is not None:
            return self.playing and self._now >= self._queue[0].record.started_at + turn.barge_in_after  # type: ignore[union-attr]
        return self._answered and not self.playing and self._now >= self._last_prompt_end + turn.pause

    def _noise_frame(self, size: int) -> bytes:
        if self._noise_offset + size > len(self._noise):
            self._noise_offset = 0
        frame = self._noise[self._noise_offset : self._noise_offset + size]
        self._noise_offset += size
        return frame
