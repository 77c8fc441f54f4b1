"""Speech out: prompts rendered offline by espeak-ng, cached in memory and on disk.

`await tts.render("Transferring you to Sarah Jones.", voice="en-gb")` returns a `Prompt` with the
audio at both call rates (8 kHz for G.711, 16 kHz for G.722), ready for `play()`. A text is
synthesised once per voice and speed: the in-memory LRU answers repeats within a process, the
disk cache (one pair of raw PCM files per prompt, named by a hash of what produced them) answers
across restarts and sibling processes. Concurrent requests for the same prompt share one render.

espeak-ng runs as an asyncio subprocess (text on stdin, so no text is ever parsed as an option);
filtering, resampling and file I/O run in a worker thread. Nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from telephony.receptionist.audio import SAMPLE_WIDTH, downsample, wav_pcm

logger = logging.getLogger(__name__)

DEFAULT_VOICE = "en-us"
DEFAULT_SPEED = 165  # words per minute; espeak's 175 is brisk on a phone line
MAX_TEXT_LENGTH = 1000
CACHE_FORMAT = 1  # bump when the rendering pipeline changes, so old files are not reused

# Our voice names (the agent's `voice`/`language`) to espeak-ng voices. Keys are lower case
# with "-" separators; `+variant` suffixes pick one of espeak's voice variants.
LANGUAGE_VOICES = {
    "en": "en-us",
    "en-us": "en-us",
    "en-gb": "en-gb",
    "en-uk": "en-gb",
    "en-ie": "en-gb",
    "en-au": "en-gb",
    "en-nz": "en-gb",
    "en-za": "en-gb",
    "en-gb-scotland": "en-gb-scotland",
    "en-gb-x-rp": "en-gb-x-rp",
    "en-029": "en-029",
    "en-jm": "en-029",
    "en-us-nyc": "en-us-nyc",
}
VARIANTS = frozenset(
    [f"m{n}" for n in range(1, 8)] + [f"f{n}" for n in range(1, 6)] + ["croak", "klatt", "klatt2", "klatt3"]
)


class SpeechSynthesisError(Exception):
    """espeak-ng failed or is missing."""


@dataclass(frozen=True)
class Prompt:
    text: str
    voice: str  # the espeak-ng voice that spoke it
    pcm8k: bytes
    pcm16k: bytes
    duration: float  # seconds

    def pcm_at(self, sample_rate: int) -> bytes:
        if sample_rate == 8000:
            return self.pcm8k
        if sample_rate == 16000:
            return self.pcm16k
        raise ValueError(f"prompts exist at 8000 and 16000 Hz, not {sample_rate}")


class Synthesizer(Protocol):
    async def render(self, text: str, *, voice: str | None = None, language: str | None = None) -> Prompt: ...


def espeak_voice(voice: str | None, language: str | None = None) -> str:
    """The espeak-ng voice for an agent's voice, else its language, else the default.

    "en-us+f3" keeps a known variant; an unknown voice or variant falls back rather than
    failing the call."""
    for name in (voice, language):
        if not name:
            continue
        base, _, variant = name.strip().lower().replace("_", "-").partition("+")
        resolved = LANGUAGE_VOICES.get(base)
        if resolved is None:
            continue
        return f"{resolved}+{variant}" if variant in VARIANTS else resolved
    return DEFAULT_VOICE


def normalise_text(text: str) -> str:
    return " ".join(text.split())[:MAX_TEXT_LENGTH]


SETTINGS_DIR = "settings"  # cache_dir default: settings.VAR_DIR/tts (memory only without Django)


class EspeakSynthesizer:
    """Renders prompts with espeak-ng. One instance per process is enough; it is safe to share
    between calls (all state is caches). `cache_dir=None` keeps prompts in memory only."""

    def __init__(
        self,
        *,
        cache_dir: Path | str | None = SETTINGS_DIR,
        memory_items: int = 256,
        speed: int = DEFAULT_SPEED,
        executable: str = "espeak-ng",
    ) -> None:
        self.speed = speed
        self.executable = shutil.which(executable) or executable
        if cache_dir == SETTINGS_DIR:
            self.cache_dir = _default_cache_dir()
        else:
            self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memory: OrderedDict[str, Prompt] = OrderedDict()
        self._memory_items = memory_items
        self._in_flight: dict[str, asyncio.Future[Prompt]] = {}
        self.renders = 0  # espeak-ng runs, for tests and the benchmark

    async def render(self, text: str, *, voice: str | None = None, language: str | None = None) -> Prompt:
        text = normalise_text(text)
        if not text:
            raise ValueError("nothing to say")
        espeak = espeak_voice(voice, language)
        key = self._key(text, espeak)
        prompt = self._memory.get(key)
        if prompt is not None:
            self._memory.move_to_end(key)
            return prompt
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Prompt] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            prompt = await self._load_or_render(key, text, espeak)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a render nobody else waited for logs nothing
            raise
        finally:
            self._in_flight.pop(key, None)
        future.set_result(prompt)
        self._remember(key, prompt)
        return prompt

    async def prerender(
        self, texts: list[str], *, voice: str | None = None, language: str | None = None
    ) -> None:
        """Warm the caches (the greeting, the usual questions) before the call needs them."""
        for text in texts:
            await self.render(text, voice=voice, language=language)

    def _key(self, text: str, espeak: str) -> str:
        material = f"{CACHE_FORMAT}\0{espeak}\0{self.speed}\0{text}"
        return hashlib.sha256(material.encode()).hexdigest()

    def _remember(self, key: str, prompt: Prompt) -> None:
        self._memory[key] = prompt
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)

    async def _load_or_render(self, key: str, text: str, espeak: str) -> Prompt:
        if self.cache_dir is not None:
            cached = await asyncio.to_thread(self._read_cache, key, text, espeak)
            if cached is not None:
                return cached
        wav = await self._synthesise(text, espeak)
        pcm, rate = wav_pcm(wav)
        pcm8k, pcm16k = await asyncio.to_thread(_both_rates, pcm, rate)
        prompt = Prompt(text=text, voice=espeak, pcm8k=pcm8k, pcm16k=pcm16k, duration=_seconds(pcm8k, 8000))
        if self.cache_dir is not None:
            await asyncio.to_thread(self._write_cache, key, prompt)
        return prompt

    async def _synthesise(self, text: str, espeak: str) -> bytes:
        args = [self.executable, "--stdout", "--stdin", "-v", espeak, "-s", str(self.speed)]
        try:
            process = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise SpeechSynthesisError(f"cannot run {self.executable}: {exc}") from exc
        try:
            stdout, stderr = await process.communicate(text.encode())
        except asyncio.CancelledError:
            process.kill()  # the call ended mid-render: leave no orphan behind
            await asyncio.shield(process.wait())
            raise
        if process.returncode != 0 or not stdout:
            raise SpeechSynthesisError(
                f"espeak-ng exited with {process.returncode}: {stderr.decode(errors='replace').strip()}"
            )
        self.renders += 1
        return stdout

    # --- disk cache: <dir>/<key[:2]>/<key>.8k.pcm and .16k.pcm ---------------------------------

    def _paths(self, key: str) -> tuple[Path, Path]:
        assert self.cache_dir is not None
        folder = self.cache_dir / key[:2]
        return folder / f"{key}.8k.pcm", folder / f"{key}.16k.pcm"

    def _read_cache(self, key: str, text: str, espeak: str) -> Prompt | None:
        path8, path16 = self._paths(key)
        try:
            pcm8k, pcm16k = path8.read_bytes(), path16.read_bytes()
        except OSError:
            return None
        if not pcm8k or len(pcm16k) // 2 != len(pcm8k):  # a half-written or foreign pair
            return None
        return Prompt(text=text, voice=espeak, pcm8k=pcm8k, pcm16k=pcm16k, duration=_seconds(pcm8k, 8000))

    def _write_cache(self, key: str, prompt: Prompt) -> None:
        # Written to a temporary name and renamed, so a reader never sees half a file.
        try:
            for path, pcm in zip(self._paths(key), (prompt.pcm8k, prompt.pcm16k), strict=True):
                path.parent.mkdir(parents=True, exist_ok=True)
                handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
                with os.fdopen(handle, "wb") as file:
                    file.write(pcm)
                os.replace(temporary, path)
        except OSError as exc:  # a full or read-only disk costs speed, not the call
            logger.warning("TTS cache write failed in %s: %s", self.cache_dir, exc)


def _both_rates(pcm: bytes, rate: int) -> tuple[bytes, bytes]:
    pcm8k = downsample(pcm, from_rate=rate, to_rate=8000)
    pcm16k = downsample(pcm, from_rate=rate, to_rate=16000)
    # ratecv rounds lengths independently; keep exactly two 16 kHz samples per 8 kHz one.
    samples = min(len(pcm8k) // SAMPLE_WIDTH, len(pcm16k) // (2 * SAMPLE_WIDTH))
    return pcm8k[: samples * SAMPLE_WIDTH], pcm16k[: samples * 2 * SAMPLE_WIDTH]


def _seconds(pcm8k: bytes, rate: int) -> float:
    return len(pcm8k) / SAMPLE_WIDTH / rate


def _default_cache_dir() -> Path | None:
    """settings.VAR_DIR/tts when Django is configured; memory only otherwise."""
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:
        return None
    try:
        return Path(settings.VAR_DIR) / "tts"
    except (ImproperlyConfigured, AttributeError):
        return None
