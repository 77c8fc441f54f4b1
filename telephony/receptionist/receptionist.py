"""The built-in receptionist on a live call: TTS, turn detection, ASR and the dialogue, wired to
the call engine through `CallControl`.

The engine implements `CallControl` for each answered call and runs
`await Receptionist(call=..., settings=..., matcher=..., tts=..., recognizer=...).run()`, which
returns the `Understanding` for the call record once the call is transferred or hung up.

Inside, three loops share one event loop (no locks): caller frames feed the turn detector and the
recogniser and give the dialogue its clock ticks; digits go straight to the dialogue; and one
runner performs the dialogue's actions in order (speak, then transfer). Barge-in (`StopSpeaking`)
and `Listen` take effect at once rather than waiting their turn behind a prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from telephony.media.codecs import Resampler
from telephony.receptionist.asr import Hypothesis, Recognizer
from telephony.receptionist.dialogue import (
    Action,
    AgentSettings,
    Dialogue,
    Hangup,
    Listen,
    Say,
    State,
    StopSpeaking,
    Transfer,
    Understanding,
)
from telephony.receptionist.grammar import Expectation
from telephony.receptionist.matching import Matcher, spoken_vocabulary
from telephony.receptionist.tts import Synthesizer
from telephony.receptionist.turns import SpeechEnded, SpeechStarted, TurnDetector

logger = logging.getLogger(__name__)

ASR_RATE = 16000
WATCHDOG = 0.5  # seconds between deadline checks that do not wait for caller audio


@dataclass(frozen=True)
class TransferOutcome:
    accepted: bool  # the PBX took the REFER and the transfer went ahead
    status: int | None = None  # the SIP status of a refusal or failed target (486, 603, ...)
    reason: str = ""


class CallControl(Protocol):
    """What the receptionist needs from a call. Implemented by the call engine per call."""

    sample_rate: int  # 8000 (G.711) or 16000 (G.722): the PCM rate of play() and audio_frames()

    def play(self, pcm: bytes) -> Awaitable[bool]:
        """Queue 16-bit mono PCM; resolves True once played, False if stopped or the call ended."""
        ...

    def stop_playback(self) -> None:
        """Barge-in: silence from the next frame on; pending play() calls resolve False."""
        ...

    def audio_frames(self) -> AsyncIterator[bytes]:
        """The caller's audio, 20 ms PCM frames at `sample_rate`; ends when the call ends."""
        ...

    def dtmf(self) -> AsyncIterator[str]:
        """Digits the caller keys in (RFC 4733): "0"-"9", "*", "#"; ends when the call ends."""
        ...

    def transfer(self, extension: str) -> Awaitable[TransferOutcome]:
        """Blind transfer (REFER to sip:<extension>@<pbx_domain>). Resolves once the PBX has
        accepted or refused it. After an accepted transfer the engine takes the receptionist
        out of the media path; `run()` returns."""
        ...

    def hangup(self) -> Awaitable[None]:
        """End the call (BYE)."""
        ...


class Receptionist:
    def __init__(
        self,
        *,
        call: CallControl,
        settings: AgentSettings,
        matcher: Matcher,
        tts: Synthesizer,
        recognizer: Recognizer,
        clock: Callable[[], float] | None = None,
        turn_detector: TurnDetector | None = None,
    ) -> None:
        self.call = call
        self.settings = settings
        self.matcher = matcher
        self.tts = tts
        self.recognizer = recognizer
        self._clock = clock
        self.turns = turn_detector or TurnDetector(sample_rate=call.sample_rate)
        self.dialogue: Dialogue | None = None
        self._expect: Expectation | None = None
        self._exclude: frozenset[str] = frozenset()
        self._transferring: asyncio.Task[None] | None = None
        self._unsaid = 0  # prompts queued or playing
        self._quiet = asyncio.Event()  # set while _unsaid == 0
        self._quiet.set()
        self._actions: asyncio.Queue[tuple[Action, int]] = asyncio.Queue()
        self._cut = 0  # bumped by every StopSpeaking: queued prompts of an older generation are dropped
        self._finished = asyncio.Event()
        self._utterance_open = False
        self._to_asr: Resampler | None = None
        self._vocabulary: asyncio.Task[None] | None = None

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def run(self) -> Understanding:
        self._vocabulary = asyncio.create_task(
            self.recognizer.set_vocabulary(spoken_vocabulary(self.matcher))
        )
        self.dialogue = Dialogue(settings=self.settings, matcher=self.matcher, started_at=self.now())
        self._apply(self.dialogue.start())
        tasks = [
            asyncio.create_task(self._perform_actions()),
            asyncio.create_task(self._follow_audio()),
            asyncio.create_task(self._follow_digits()),
            asyncio.create_task(self._watch_deadlines()),
        ]
        try:
            await self._finished.wait()
        finally:
            if self._transferring is not None:
                tasks.append(self._transferring)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, self._vocabulary, return_exceptions=True)
            self.recognizer.close()
        return self.dialogue.understanding

    # --- dialogue actions ----------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case StopSpeaking():
                    self._cut += 1
                    self.call.stop_playback()
                case Listen(expect=expect, exclude=exclude):
                    self._expect, self._exclude = expect, exclude
                case Transfer():
                    # The REFER goes out now, not after "Transferring you to …": the caller hears
                    # the confirmation while the PBX works on the transfer.
                    self._expect = None
                    self._transferring = asyncio.create_task(self._transfer(action.extension))
                case Hangup():
                    self._expect = None
                    self._actions.put_nowait((action, self._cut))
                case Say():
                    self._unsaid += 1
                    self._quiet.clear()
                    self._actions.put_nowait((action, self._cut))

    async def _perform_actions(self) -> None:
        assert self.dialogue is not None
        while True:
            action, generation = await self._actions.get()
            match action:
                case Say(text=text):
                    if generation == self._cut:
                        await self._say(text)
                    self._unsaid -= 1
                    if self._unsaid == 0:
                        self._quiet.set()
                    self._apply(self.dialogue.prompt_finished(self.now()))
                case Hangup():
                    with contextlib.suppress(Exception):
                        await self.call.hangup()
                    self._finished.set()
                    return

    async def _say(self, text: str) -> None:
        try:
            prompt = await self.tts.render(text, voice=self.settings.voice, language=self.settings.language)
            await self.call.play(prompt.pcm_at(self.call.sample_rate))
        except Exception:  # a prompt that cannot be said must not stop the conversation
            logger.exception("could not say %r", text)

    async def _transfer(self, extension: str) -> None:
        assert self.dialogue is not None
        try:
            outcome = await self.call.transfer(extension)
        except Exception as exc:
            logger.exception("transfer to %s raised", extension)
            outcome = TransferOutcome(accepted=False, reason=str(exc))
        if outcome.accepted:
            # The confirmation may still be playing (once the PBX has the caller, it stops at once).
            await self._quiet.wait()
            self._apply(self.dialogue.transfer_succeeded(self.now()))
            self._finished.set()
            return
        logger.info("transfer to %s failed: %s %s", extension, outcome.status, outcome.reason)
        self._apply(self.dialogue.transfer_failed(self.now()))

    # --- the caller ----------------------------------------------------------------------------

    async def _follow_audio(self) -> None:
        # Frames are taken one at a time (the engine's RTP session queues them meanwhile), so a
        # clock that counts frames stays in step with what has been heard.
        async for frame in self.call.audio_frames():
            await self._hear(frame)
            self._check_deadlines()
        assert self.dialogue is not None
        self._apply(self.dialogue.caller_hung_up(self.now()))
        self._finished.set()

    async def _watch_deadlines(self) -> None:
        """Deadlines still pass if the caller's audio stops arriving."""
        while True:
            await asyncio.sleep(WATCHDOG)
            self._check_deadlines()

    async def _hear(self, frame: bytes) -> None:
        assert self.dialogue is not None
        now = self.now()
        events = self.turns.feed(frame, now)
        for event in events:
            if isinstance(event, SpeechStarted):
                await self._open_utterance(event)  # the pre-roll ends with this frame
                self._apply(self.dialogue.speech_started(now))
            elif isinstance(event, SpeechEnded):
                hypothesis = await self._close_utterance()
                if event.short:
                    self._apply(self.dialogue.speech_discarded(self.now()))
                elif hypothesis is not None:
                    self._apply(self.dialogue.heard(hypothesis, speech_ended_at=event.at, now=self.now()))
        if not events and self._utterance_open:
            self.recognizer.feed(self._for_asr(frame))
            # A recogniser that can tell a whole sentence from a prefix shortens the hangover.
            self.turns.complete = bool(getattr(self.recognizer, "sentence_complete", False))

    async def _open_utterance(self, event: SpeechStarted) -> None:
        if self._expect is None:
            return
        if self._vocabulary is not None:
            try:
                await asyncio.shield(self._vocabulary)
            except Exception:  # no grammar, no speech: digits and the timeouts still work
                logger.exception("could not build the speech grammar")
                return
        self._to_asr = Resampler(self.call.sample_rate, ASR_RATE)
        self.recognizer.start_utterance(self._expect, self._exclude)
        self._utterance_open = True
        self.recognizer.feed(self._for_asr(event.pre_roll))

    async def _close_utterance(self) -> Hypothesis | None:
        if not self._utterance_open:
            return None
        self._utterance_open = False
        try:
            return await self.recognizer.finish()
        except Exception:
            logger.exception("speech recognition failed")
            return Hypothesis("", 0.0)

    def _for_asr(self, pcm: bytes) -> bytes:
        assert self._to_asr is not None
        return self._to_asr.convert(pcm)

    async def _follow_digits(self) -> None:
        assert self.dialogue is not None
        async for digit in self.call.dtmf():
            self._apply(self.dialogue.digit(digit, self.now()))

    def _check_deadlines(self) -> None:
        assert self.dialogue is not None
        deadline = self.dialogue.next_deadline()
        now = self.now()
        if deadline is not None and now >= deadline:
            self._apply(self.dialogue.tick(now))
        if self.dialogue.state is State.ENDED:
            self._finished.set()
