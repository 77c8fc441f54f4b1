"""Speech in: the `Recognizer` interface and its offline implementation on pocketsphinx 5.

A recogniser hears one utterance at a time: `start_utterance(expect)`, `feed(pcm16k)` as the
caller speaks, `await finish()` for a `Hypothesis(text, confidence)`. Feeding only queues audio;
decoding happens in a worker thread while the caller is still talking, so `finish()` has little
left to do. Each call has its own recogniser; the threads come from one shared pool and audio is
decoded in 100 ms chunks, so the event loop keeps turning while calls decode side by side.
pocketsphinx holds the GIL while it computes, so the threads do not add cores: one engine process
decodes on one core, and more calls need more engine processes. The costly step is the end of an
utterance: the lattice search behind `hyp()` (best path and word posteriors) takes ~20-150 ms.

`PocketsphinxRecognizer` decodes with the bundled en-US acoustic model against the directory's
grammar (see `grammar.py`). A grammar always finds *some* sentence, even in a cough, so the
confidence asks two things. How sure is the decoder of the words that matter, against the other
sentences it considered (their posterior in its word lattice)? And how well does the audio fit
the sentence found at all: pocketsphinx scores each 10 ms frame relative to the best-fitting
sound unit of that frame, so the path's score per frame is near 0 when the audio really is that
sentence and far below it when the grammar had to force something onto it (nonsense, noise, a
name not in the directory). A sentence the audio ran out in the middle of ("can i speak to")
has no confidence at all.
"""

from __future__ import annotations

import asyncio
import atexit
import math
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from telephony.receptionist.grammar import Expectation, Grammar, build_grammar, espeak_derive

# Confidence = the lower of two signals, each 0..1:
# - the posterior probability (from the decoder's word lattice) of the least certain word that
#   names someone; lead-ins ("can I speak to") do not count;
# - logistic((fit - FIT_MIDPOINT) / FIT_SCALE), the fit being the grammar path's acoustic score
#   per 10 ms frame of speech relative to the best unit of each frame, in nats (<= 0).
# Calibrated on synthesised telephone speech with the TELEPHONE_CMN start and topn 16 (the
# benchmark's quick set and 48 sentences that name nobody): a fit above -4.5 held 68 of 97 right
# hearings and none of the 42 sentences; below -5.1, 30 of those 42 and 10 right hearings.
FIT_MIDPOINT = -4.8
FIT_SCALE = 0.2
DECODER_OPTIONS: dict[str, Any] = {
    "wip": 0.2,  # word insertion penalty: fewer spurious short words ("i", "can") at the edges
    # Gaussians scored per frame (default 4). Telephone audio lacks the 4-8 kHz band the model
    # was trained on, so the best few Gaussians are often the wrong ones; 16 raised right
    # hearings on the benchmark's quick set from 71 % to 76 % for ~25 % more CPU.
    "topn": 16,
    # No dither: pocketsphinx draws it from one process-wide random stream, so results would
    # depend on what other calls decoded before. Noise removal is off (see AcousticModel), so
    # digital silence from a PBX does not need it.
    "dither": False,
}
# Where cepstral mean normalisation starts each call. The decoder normalises live, from a running
# mean that only settles after a few seconds of speech; from the model's default start (made for
# wideband microphones) the first request of a call, the one that matters, is decoded with its
# cepstrum far off. This is the mean over 250 synthesised utterances (prompts and free requests,
# not the benchmark's; six voices, three speeds) through G.711 and upsampled to 16 kHz.
# It lifted requests decoded to the right person from 51 % to 71 % (bench set, first utterance).
TELEPHONE_CMN = "53.9,-1.9,-4.3,7.7,-5.1,-5.0,-2.4,-5.9,-13.4,9.0,-10.0,5.0,-4.7"
_FILLERS = ("<", "[", "+")  # <s> </s> <sil> [NOISE] +BREATH+ ...


@dataclass(frozen=True)
class Hypothesis:
    text: str  # "" when nothing was recognised
    confidence: float  # 0..1
    expect: Expectation = Expectation.REQUEST
    audio_seconds: float = 0.0
    # Directory phrases that sound like the one heard (another person the caller may have said).
    sound_alikes: tuple[str, ...] = ()


class Recognizer(Protocol):
    """One call's speech recogniser. Not shared between calls.

    Optional: a `sentence_complete` attribute, true while the words decoded so far are a whole
    sentence of the grammar; the receptionist then ends the turn after a shorter silence."""

    async def set_vocabulary(self, phrases: Sequence[str]) -> None:
        """The directory changed: hear these phrases from the next utterance on."""

    def start_utterance(
        self, expect: Expectation = Expectation.REQUEST, exclude: Collection[str] = ()
    ) -> None:
        """`exclude`: directory phrases not to hear in this utterance (targets the caller turned down)."""

    def feed(self, pcm16k: bytes) -> None:
        """16 kHz PCM of the utterance in progress. Never blocks."""

    async def finish(self) -> Hypothesis: ...

    def close(self) -> None: ...


# --- the shared model ------------------------------------------------------------------------


class AcousticModel:
    """What every call shares: the model's paths, pronunciation look-ups (the 130k-word CMU
    dictionary is loaded once, not per call) and compiled grammars by directory.

    The bundled model's `feat.params` switch on spectral noise removal, and those settings
    override any given to the decoder. On telephone audio (nothing above 4 kHz) it removes more
    than noise: recognition of our synthesised test callers improves by about 5 points without it.
    So `telephone=True` decodes with a copy of the model directory whose feat.params say
    `-remove_noise no` (the model files themselves are symlinked, not copied)."""

    def __init__(
        self,
        *,
        derive: Callable[[Sequence[str]], dict[str, str]] | None = espeak_derive,
        telephone: bool = True,
    ) -> None:
        import pocketsphinx

        self._pocketsphinx = pocketsphinx
        self.hmm = pocketsphinx.get_model_path("en-us/en-us")
        if telephone:
            self.hmm = _telephone_variant(self.hmm)
        self.dictionary = pocketsphinx.get_model_path("en-us/cmudict-en-us.dict")
        self._derive = derive
        self._lookup_decoder: Any = None
        self._lock = threading.Lock()
        self._grammars: OrderedDict[tuple[str, ...], Grammar] = OrderedDict()

    def decoder(self, **options: Any) -> Any:
        """A decoder with an empty dictionary (words are added per grammar: ~5 MB, not ~30)."""
        return self._pocketsphinx.Decoder(hmm=self.hmm, lm=None, dict=None, loglevel="FATAL", **options)

    def pronunciations(self, word: str) -> list[str]:
        """Every CMU dictionary pronunciation of `word` ("to" has three). Thread-safe."""
        with self._lock:
            if self._lookup_decoder is None:
                self._lookup_decoder = self._pocketsphinx.Decoder(
                    hmm=self.hmm, lm=None, dict=self.dictionary, loglevel="FATAL"
                )
            found: list[str] = []
            for variant in range(1, 10):
                phones = self._lookup_decoder.lookup_word(word if variant == 1 else f"{word}({variant})")
                if not phones:
                    break
                found.append(phones)
            return found

    def grammar(self, phrases: Sequence[str]) -> Grammar:
        """The grammar for a directory, built once per distinct vocabulary. Blocking."""
        key = tuple(phrases)
        with self._lock:
            cached = self._grammars.get(key)
            if cached is not None:
                self._grammars.move_to_end(key)
                return cached
        grammar = build_grammar(key, lookup=self.pronunciations, derive=self._derive)
        with self._lock:
            self._grammars[key] = grammar
            while len(self._grammars) > 64:
                self._grammars.popitem(last=False)
        return grammar


def _telephone_variant(hmm: str) -> str:
    """A private (0700, per process) model directory: the model's files linked, feat.params edited."""
    source = Path(hmm)
    target = Path(tempfile.mkdtemp(prefix="smartalex-asr-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    for item in source.iterdir():
        if item.name != "feat.params":
            (target / item.name).symlink_to(item)
    params = (source / "feat.params").read_text()
    (target / "feat.params").write_text(params.replace("-remove_noise yes", "-remove_noise no"))
    return str(target)


_default_model: AcousticModel | None = None
_default_model_lock = threading.Lock()
_executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="asr")


def default_model() -> AcousticModel:
    global _default_model
    with _default_model_lock:
        if _default_model is None:
            _default_model = AcousticModel()
        return _default_model


# --- the recogniser --------------------------------------------------------------------------


class PocketsphinxRecognizer:
    def __init__(
        self,
        *,
        model: AcousticModel | None = None,
        executor: ThreadPoolExecutor | None = None,
        decoder_options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model or default_model()
        self.grammar: Grammar | None = None
        self._executor = executor or _executor
        self._options = {**DECODER_OPTIONS, **(decoder_options or {})}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tail: asyncio.Future[Any] | None = None  # the last job: jobs run one after another
        self._pending: list[bytes] = []
        self._pending_lock = threading.Lock()
        self._drain_queued = False
        self._expect = Expectation.REQUEST
        self._in_utterance = False
        self._fed_bytes = 0
        # Whether the words decoded so far are a whole sentence of the grammar (set by the
        # decoding thread; read by the turn detector to end the turn sooner).
        self.sentence_complete = False
        # Touched only inside jobs (one at a time, in the pool):
        self._decoders: _Decoders | None = None

    async def set_vocabulary(self, phrases: Sequence[str]) -> None:
        self.grammar = await asyncio.to_thread(self.model.grammar, list(phrases))

    def start_utterance(
        self, expect: Expectation = Expectation.REQUEST, exclude: Collection[str] = ()
    ) -> None:
        if self.grammar is None:
            raise RuntimeError("set_vocabulary() before the first utterance")
        with self._pending_lock:
            self._pending.clear()
        self._expect = expect
        self._in_utterance = True
        self._fed_bytes = 0
        self.sentence_complete = False
        grammar, options, excluded = self.grammar, self._options, frozenset(exclude)
        self._submit(lambda: self._start(grammar, expect, options, excluded))

    def feed(self, pcm16k: bytes) -> None:
        if not self._in_utterance or not pcm16k:
            return
        self._fed_bytes += len(pcm16k)
        with self._pending_lock:
            self._pending.append(pcm16k)
            if self._drain_queued:
                return
            self._drain_queued = True
        self._submit(self._drain)

    async def finish(self) -> Hypothesis:
        if not self._in_utterance:
            return Hypothesis("", 0.0, self._expect)
        self._in_utterance = False
        seconds = self._fed_bytes / 2 / 16000
        self._submit(self._drain)
        text, confidence = await self._submit(self._end)
        alikes = ()
        if self._expect is Expectation.REQUEST and self.grammar is not None and confidence > 0:
            alikes = self.grammar.sound_alikes_of(text)
        return Hypothesis(text, confidence, self._expect, seconds, alikes)

    def close(self) -> None:
        self._in_utterance = False
        self._submit(self._release)

    # --- jobs (run in the pool, one at a time per recogniser) ---------------------------------

    def _submit(self, job: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): jobs of the old one are gone
            self._loop, self._tail = loop, None
        previous = self._tail

        async def run() -> Any:
            if previous is not None:
                await asyncio.wait([previous])  # its failure belongs to whoever awaited it
            return await loop.run_in_executor(self._executor, job)

        task = loop.create_task(run())
        task.add_done_callback(_consume_exception)
        self._tail = task
        return task

    def _start(
        self, grammar: Grammar, expect: Expectation, options: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        if self._decoders is None or self._decoders.grammar is not grammar:
            # A new directory mid-call: keep what normalisation has learnt of this caller's line.
            cmn = self._decoders.decoder.get_cmn() if self._decoders is not None else TELEPHONE_CMN
            self._decoders = _Decoders(self.model, grammar, options, cmn=cmn)
        self._decoders.start(expect, exclude)
        self.sentence_complete = False

    def _drain(self) -> None:
        with self._pending_lock:
            chunks, self._pending = self._pending, []
            self._drain_queued = False
        if self._decoders is not None and chunks:
            self._decoders.process(b"".join(chunks))
            if self._in_utterance:
                self.sentence_complete = self._decoders.partial_is_sentence()

    def _end(self) -> tuple[str, float]:
        if self._decoders is None:
            return "", 0.0
        return self._decoders.end()

    def _release(self) -> None:
        self._decoders = None


def _consume_exception(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class _Decoders:
    """A decoder loaded with one grammar's words and searches."""

    CHUNK = 1600  # 50 ms at 16 kHz: short C calls, so other threads get the GIL in between

    def __init__(
        self, model: AcousticModel, grammar: Grammar, options: dict[str, Any], *, cmn: str = ""
    ) -> None:
        self.grammar = grammar
        self.expect = Expectation.REQUEST
        self.decoder = model.decoder(**options)
        for word, pronunciations in grammar.lexicon.items():
            for index, phones in enumerate(pronunciations):
                self.decoder.add_word(word if index == 0 else f"{word}({index + 1})", phones, False)
        for expect, jsgf in grammar.jsgf.items():
            self.decoder.add_jsgf_string(expect.value, jsgf)
        self.decoder.set_cmn(cmn or TELEPHONE_CMN)
        self._searches = {frozenset(): Expectation.REQUEST.value}  # exclusions -> search name

    def start(self, expect: Expectation, exclude: frozenset[str] = frozenset()) -> None:
        self.expect = expect
        search = expect.value
        if expect is Expectation.REQUEST:
            search = self._searches.get(exclude, "")
            if not search:
                search = f"request-{len(self._searches)}"
                self.decoder.add_jsgf_string(search, self.grammar.request_jsgf(exclude))
                self._searches[exclude] = search
        self.decoder.activate_search(search)
        self.decoder.start_utt()

    def process(self, pcm16k: bytes) -> None:
        for offset in range(0, len(pcm16k), self.CHUNK):
            self.decoder.process_raw(pcm16k[offset : offset + self.CHUNK])

    def partial_is_sentence(self) -> bool:
        """The best path so far is a whole sentence (a cheap backtrace, no lattice)."""
        hyp = self.decoder.hyp()
        return hyp is not None and self.grammar.accepts(" ".join(hyp.hypstr.split()), self.expect)

    def end(self) -> tuple[str, float]:
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        text = " ".join(hyp.hypstr.split()) if hyp is not None else ""
        if not text or not self.grammar.accepts(text, self.expect):
            return text, 0.0  # nothing, or a sentence the audio ran out in the middle of
        return text, min(self.least_certain_word(), fit_confidence(self.fit()))

    def least_certain_word(self) -> float:
        """The lowest lattice posterior among the words that carry the meaning."""
        meaningful = self.grammar.meaningful_words[self.expect]
        posteriors = [s.prob for s in self.decoder.seg() if s.word.split("(")[0] in meaningful]
        return min(posteriors, default=0.0)

    def fit(self) -> float:
        """The grammar path's acoustic score per frame of speech, in nats (0 = perfect)."""
        segments = list(self.decoder.seg())
        words = [s for s in segments if not s.word.startswith(_FILLERS)]
        if not words:
            return -math.inf
        first, last = words[0].start_frame, words[-1].end_frame
        in_speech = [s for s in segments if first <= s.start_frame and s.end_frame <= last]
        # A density below the float range (a long, hopeless word) counts as very bad, not a crash.
        score = sum(math.log(s.ascore) if s.ascore > 0 else -700.0 for s in in_speech)
        return score / (last - first + 1)


def fit_confidence(fit: float) -> float:
    if fit == -math.inf:
        return 0.0
    return 1 / (1 + math.exp(-(fit - FIT_MIDPOINT) / FIT_SCALE))
