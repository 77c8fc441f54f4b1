"""Shared set-up for the receptionist tests: the directory from the customer guide (plus a second
Sarah for ambiguity), one synthesiser for the whole session with the usual prompts rendered, and
a helper that speaks a caller's request into a phone line (WAVs kept under tmp_path)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from telephony.receptionist import prompts
from telephony.receptionist.matching import DirectoryEntry, SimpleDirectoryMatcher
from telephony.receptionist.phoneline import caller_audio
from telephony.receptionist.tts import EspeakSynthesizer

DIRECTORY = (
    DirectoryEntry("101", "Sales", "Sarah Jones", "Sales", ("sarah", "sales team")),
    DirectoryEntry("102", "Support", "John Smith", "Support", ("support", "tech")),
    DirectoryEntry("103", "Sarah Miller", "Sarah Miller", "Support"),
    DirectoryEntry("100", "Reception", "", "Reception"),
)
NAMES = ("Sarah Jones", "John Smith", "Sarah Miller", "Reception")


def run(coroutine: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@dataclass(frozen=True)
class LoopWatch:
    result: Any  # what the watched work returned
    longest_stall: float  # the longest time the event loop went without running a ticker
    ticks: int
    took: float  # how long the work took


async def watch_the_loop(work: Awaitable[Any], tick: float = 0.002) -> LoopWatch:
    """Runs `work` beside a ticker that notes how long the event loop goes without turning. Work
    done on the loop stalls it for most of `took`; work off the loop only for a scheduling hiccup,
    so tests compare the two rather than use fixed milliseconds (which a loaded machine fails)."""
    loop = asyncio.get_running_loop()
    stalls: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(tick)
            stalls.append(loop.time() - last)
            last = loop.time()

    watcher = asyncio.create_task(ticker())
    started = loop.time()
    result = await work
    took = loop.time() - started
    stop.set()
    await watcher
    return LoopWatch(result, max(stalls, default=took), len(stalls), took)


@pytest.fixture
def matcher() -> SimpleDirectoryMatcher:
    return SimpleDirectoryMatcher(DIRECTORY)


@pytest.fixture(scope="session")
def tts(tmp_path_factory: pytest.TempPathFactory) -> EspeakSynthesizer:
    """Rendered ahead, so a test's virtual call clock does not run on while espeak-ng works."""
    synthesizer = EspeakSynthesizer(cache_dir=tmp_path_factory.mktemp("tts"))
    texts = [
        *prompts.FIXED,
        "Sarah in Sales or Sarah in Support?",
        *(prompts.transferring(name) for name in NAMES),
        *(prompts.confirm(name) for name in NAMES),
    ]
    run(synthesizer.prerender(texts))
    return synthesizer


@pytest.fixture
def speak(tmp_path: Path) -> Callable[..., bytes]:
    """speak("Sarah Jones please", voice="en-gb", speed=150, law="alaw") -> 8 kHz PCM from the line."""
    count = 0

    def speak(text: str, **options: Any) -> bytes:
        nonlocal count
        count += 1
        return caller_audio(text, wav_path=tmp_path / f"caller-{count}.wav", **options)

    return speak
