"""The agent on each call: the receptionist by default, a DTMF-only agent when it cannot run.

The receptionist needs speech recognition; if its model cannot load (or `agent_mode="dtmf"`),
callers still get the first message and can key an extension (0 → the fallback extension).
Directories are read in a thread and cached per trunk and configuration version, so the loop
never waits for PostgreSQL and an edited directory is used from the next call on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telephony.config import EngineConfig, TrunkConfig
from telephony.receptionist import prompts
from telephony.receptionist.dialogue import AgentSettings, Understanding
from telephony.receptionist.matching import ExtensionsMatcher, Matcher

if TYPE_CHECKING:
    from telephony.call_control import EngineCallControl
    from telephony.calls.call import Call
    from telephony.calls.handler import CallSettings

log = logging.getLogger("telephony.calls")


def directory_from_db(trunk: TrunkConfig) -> Matcher:
    from django.db import connections

    from extensions.selectors import directory_matcher
    from smartalex.tenancy.models import Tenant

    try:
        return ExtensionsMatcher(directory_matcher(tenant=Tenant(pk=trunk.tenant_id), trunk_id=trunk.id))
    finally:
        connections.close_all()


def agent_settings(trunk: TrunkConfig) -> AgentSettings:
    agent = trunk.agent
    if agent is None:
        return AgentSettings()
    return AgentSettings.from_agent(agent)


class AgentRuntime:
    def __init__(self, settings: CallSettings, *, config: Callable[[], EngineConfig]) -> None:
        self.settings = settings
        self._config = config
        self._matchers: dict[int, tuple[int, Matcher]] = {}
        self._tts: Any = None
        self._asr_ready: bool | None = None
        self.external: Any = None  # ExternalAgentServer, when the WebSocket is on

    async def warm_up(self) -> None:
        await self._speech_recognition()

    async def run(self, call: Call, control: EngineCallControl) -> Understanding | None:
        settings = agent_settings(call.trunk)
        tts = self.tts()
        line = self.external.claim(call.trunk.id) if self.external is not None else None
        if line is not None:
            from telephony.external_agent import ExternalAgent

            return await ExternalAgent(line=line, call=call, control=control, tts=tts).run()
        matcher = await self.matcher(call.trunk)
        if self.settings.agent_mode == "receptionist" and await self._speech_recognition():
            from telephony.receptionist.asr import PocketsphinxRecognizer
            from telephony.receptionist.receptionist import Receptionist

            receptionist = Receptionist(
                call=control, settings=settings, matcher=matcher, tts=tts, recognizer=PocketsphinxRecognizer()
            )
            return await receptionist.run()
        return await DtmfAgent(call=control, settings=settings, matcher=matcher, tts=tts).run()

    async def matcher(self, trunk: TrunkConfig) -> Matcher:
        version = self._config().version
        known = self._matchers.get(trunk.id)
        if known is not None and known[0] == version:
            return known[1]
        load = self.settings.directory or directory_from_db
        matcher = await asyncio.to_thread(load, trunk)
        self._matchers[trunk.id] = (version, matcher)
        return matcher

    def tts(self) -> Any:
        if self._tts is None:
            from telephony.receptionist.tts import EspeakSynthesizer

            self._tts = EspeakSynthesizer()
        return self._tts

    async def _speech_recognition(self) -> bool:
        """Loads the acoustic model once, in a thread; False (DTMF agent) if it cannot."""
        if self._asr_ready is None:
            try:
                from telephony.receptionist.asr import default_model

                await asyncio.to_thread(default_model)
                self._asr_ready = True
            except Exception:  # noqa: BLE001 — any failure: callers still get the DTMF agent
                log.exception("speech recognition unavailable; calls use the DTMF agent")
                self._asr_ready = False
        return self._asr_ready


class DtmfAgent:
    """First message, then an extension keyed in: `#` or a pause ends it; 0 → fallback."""

    INTER_DIGIT = 2.0

    def __init__(
        self, *, call: EngineCallControl, settings: AgentSettings, matcher: Matcher, tts: Any
    ) -> None:
        self.call = call
        self.settings = settings
        self.known = set(matcher.extensions())
        self.tts = tts
        self.understanding = Understanding()

    async def run(self) -> Understanding:
        loop = asyncio.get_running_loop()
        started = loop.time()
        asyncio.create_task(self._say(self.settings.first_message or prompts.DEFAULT_GREETING))
        digits = self.call.dtmf()
        number = ""
        while True:
            remaining = started + self.settings.max_call_duration - loop.time()
            wait = min(self.INTER_DIGIT if number else self.settings.silence_timeout, max(remaining, 0.01))
            try:
                digit = await asyncio.wait_for(anext(digits), wait)
            except StopAsyncIteration:
                return self.understanding  # the call ended
            except TimeoutError:
                if number:
                    number, done = "", number
                    if await self._dialled(done):
                        return self.understanding
                    continue
                closing = prompts.TIME_LIMIT_GOODBYE if remaining <= wait else prompts.SILENCE_GOODBYE
                self.understanding.hangup_reason = (
                    "max_call_duration" if remaining <= wait else "silence_timeout"
                )
                await self._say(closing)
                await self.call.hangup()
                return self.understanding
            self.call.stop_playback()
            if digit == "#" or (digit == "0" and not number):
                done, number = (number or "0"), ""
                if await self._dialled(done):
                    return self.understanding
                continue
            number += digit
            if number in self.known and not any(k != number and k.startswith(number) for k in self.known):
                done, number = number, ""
                if await self._dialled(done):
                    return self.understanding

    async def _dialled(self, number: str) -> bool:
        extension = self.settings.fallback_extension if number == "0" else number
        if not extension:
            await self._say(prompts.NO_OPERATOR)
            return False
        loop = asyncio.get_running_loop()
        self.understanding.extension = extension
        self.understanding.method = "operator" if number == "0" else "dtmf"
        self.understanding.text = number
        self.understanding.confidence = 1.0
        self.understanding.heard_at = self.understanding.decided_at = loop.time()
        outcome = await self.call.transfer(extension)
        if outcome.accepted:
            return True
        self.understanding.extension = None
        await self._say(
            prompts.unavailable_then_fallback(f"extension {' '.join(extension)}").split(".")[0] + "."
        )
        return False

    async def _say(self, text: str) -> None:
        try:
            prompt = await self.tts.render(text, voice=self.settings.voice, language=self.settings.language)
        except Exception:  # noqa: BLE001 — a prompt we cannot render is skipped, the call goes on
            log.exception("could not render %r", text)
            return
        await self.call.play(prompt.pcm_at(self.call.sample_rate))
