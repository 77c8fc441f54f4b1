"""Speech in: the `Recognizer` interface and its offline implementation on pocketsphinx 5.

A recogniser hears one utterance at a time: `start_utterance(expect)`, `feed(pcm16k)` as the
caller speaks, `await finish()` for a `Hypothesis(text, confidence)`. Feeding only queues audio;
decoding happens in a worker thread while the caller is still talking, so `finish()` has little
left to do. Each call has its own recogniser; the threads come from one shared `DecodePool` and
audio is decoded in 50 ms chunks, so the event loop keeps turning while calls decode side by
side (pocketsphinx releases the GIL while it computes: two threads use two cores). The costly
step is the end of an utterance: the lattice search behind `hyp()` (best path and word
posteriors) takes ~20-150 ms, and the pool gives it a lane of its own.

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
import concurrent.futures
import contextlib
import math
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from telephony.receptionist.grammar import CORRECTION_NOES, Expectation, Grammar, build_grammar, espeak_derive

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
# A hearing from the second look (names only, see _Decoders.end) is a guess made after the lead-ins
# lost: never sure enough to transfer without asking (in the benchmark two such guesses at 0.84
# and 0.87 were wrong people).
SECOND_LOOK_CONFIDENCE = 0.5
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


class DecodePool:
    """The threads that decode, with a lane for end-of-turn work.

    Two kinds of job share the pool. Streaming jobs decode audio while the caller talks: they
    only have to keep up. The end-of-turn job (the rest of the audio, then the lattice search)
    is what the caller waits for before the transfer. In a first-in first-out pool it queued
    behind every other call's chunks: with 12 calls recognising at once `finish()` took 0.8-1.9 s
    at p99 (bench/receptionist.py). So:

    - a recogniser whose caller stopped talking is *urgent* (`set_urgent`): its jobs are taken
      before any other, and one thread (the lane) takes nothing else, so end-of-turn work never
      waits for a thread;
    - streaming jobs pause between 50 ms chunks while another call's urgent job waits or runs
      (`pause_for_urgent`, at most `max_pause`), so it has the cores to itself;
    - streaming threads run at a lower OS priority (`streaming_nice`), so the lane thread and
      the event loop (turn detection, RTP) win the CPU over them, across engine processes too.

    pocketsphinx releases the GIL while it decodes, so the threads do run side by side."""

    def __init__(self, workers: int = 2, *, streaming_nice: int = 5, max_pause: float = 0.5) -> None:
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._running: set[_Job] = set()
        self._urgent: set[object] = set()
        self._nice = streaming_nice
        self.max_pause = max_pause
        for index in range(workers):
            threading.Thread(target=self._work, args=(False,), name=f"asr-{index}", daemon=True).start()
        threading.Thread(target=self._work, args=(True,), name="asr-lane", daemon=True).start()

    def submit(self, fn: Callable[[], Any], *, owner: object) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cond:
            self._queue.append(_Job(fn, future, owner))
            self._cond.notify_all()
        return future

    def set_urgent(self, owner: object, urgent: bool) -> None:
        with self._cond:
            if urgent:
                self._urgent.add(owner)
            else:
                self._urgent.discard(owner)
            self._cond.notify_all()

    def pause_for_urgent(self, owner: object) -> None:
        """Called by a streaming job between chunks: wait while another call's turn is ending."""
        deadline = time.monotonic() + self.max_pause
        with self._cond:
            while owner not in self._urgent and self._urgent_elsewhere(owner):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _urgent_elsewhere(self, owner: object) -> bool:
        return any(
            job.owner in self._urgent and job.owner is not owner for job in (*self._queue, *self._running)
        )

    def _take(self, lane: bool) -> _Job | None:
        for job in self._queue:
            if job.owner in self._urgent:
                self._queue.remove(job)
                return job
        return None if lane or not self._queue else self._queue.popleft()

    def _work(self, lane: bool) -> None:
        if not lane and self._nice:
            with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
        while True:
            with self._cond:
                while (job := self._take(lane)) is None:
                    self._cond.wait()
                self._running.add(job)
            try:
                if job.future.set_running_or_notify_cancel():
                    try:
                        job.future.set_result(job.fn())
                    except BaseException as exc:  # noqa: BLE001 — handed to whoever awaits it
                        job.future.set_exception(exc)
            finally:
                with self._cond:
                    self._running.discard(job)
                    self._cond.notify_all()


@dataclass(eq=False)
class _Job:
    fn: Callable[[], Any]
    future: concurrent.futures.Future[Any]
    owner: object


_pool: DecodePool | None = None


def default_pool() -> DecodePool:
    global _pool
    with _default_model_lock:
        if _pool is None:
            _pool = DecodePool(workers=max(2, os.cpu_count() or 2))
        return _pool


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
        pool: DecodePool | None = None,
        decoder_options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model or default_model()
        self.grammar: Grammar | None = None
        self._pool = pool or default_pool()
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
        # Until the hypothesis is out, this call's jobs go first (see DecodePool).
        self._pool.set_urgent(self, True)
        try:
            text, confidence = await self._submit(self._end)
        finally:
            self._pool.set_urgent(self, False)
        alikes = ()
        if self.grammar is not None and confidence > 0:  # a "no, <name>" answer names someone too
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
            return await asyncio.wrap_future(self._pool.submit(job, owner=self))

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
            self._decoders.process(b"".join(chunks), between=lambda: self._pool.pause_for_urgent(self))
            if self._in_utterance:
                self.sentence_complete = self._decoders.partial_is_sentence()

    def _end(self) -> tuple[str, float]:
        """The audio not decoded yet, then the hypothesis: one job, so no second wait in line."""
        self._drain()
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

    CHUNK = 1600  # 50 ms at 16 kHz: a streaming job can pause for another call's turn end in between

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
        # (exclusions, with lead-ins) -> search name
        self._searches = {(frozenset(), True): Expectation.REQUEST.value}
        self._exclude: frozenset[str] = frozenset()
        self._audio: list[bytes] = []  # the utterance so far, for a second look

    def start(self, expect: Expectation, exclude: frozenset[str] = frozenset()) -> None:
        self.expect, self._exclude, self._audio = expect, exclude, []
        self._activate(expect, exclude)
        self.decoder.start_utt()

    def _activate(self, expect: Expectation, exclude: frozenset[str], *, lead_ins: bool = True) -> None:
        search = expect.value
        if expect is Expectation.REQUEST:
            search = self._searches.get((exclude, lead_ins), "")
            if not search:
                search = f"request-{len(self._searches)}"
                self.decoder.add_jsgf_string(search, self.grammar.request_jsgf(exclude, lead_ins=lead_ins))
                self._searches[exclude, lead_ins] = search
        self.decoder.activate_search(search)

    def process(self, pcm16k: bytes, between: Callable[[], None] | None = None) -> None:
        self._audio.append(pcm16k)
        for offset in range(0, len(pcm16k), self.CHUNK):
            if between is not None and offset:
                between()
            self.decoder.process_raw(pcm16k[offset : offset + self.CHUNK])

    def partial_is_sentence(self) -> bool:
        """The best path so far is a whole sentence (a cheap backtrace, no lattice)."""
        hyp = self.decoder.hyp()
        if hyp is None:
            return False
        text = " ".join(hyp.hypstr.split())
        if self.expect is Expectation.YES_NO and text in CORRECTION_NOES:
            return False  # a bare "no" may go on with a name ("no, Sarah Jones"): keep listening
        return self.grammar.accepts(text, self.expect)

    def end(self) -> tuple[str, float]:
        text, ceiling = self._end_utt(), 1.0
        if text and not self.grammar.accepts(text, self.expect) and self.expect is Expectation.REQUEST:
            # The audio ran out mid-sentence ("can i talk to" for "Ken Porter"): the lead-ins
            # won the search and the whole sentence was pruned. Decode it again with names only.
            audio, self._audio = b"".join(self._audio), []
            self._activate(self.expect, self._exclude, lead_ins=False)
            self.decoder.start_utt()
            self.process(audio)
            text, ceiling = self._end_utt(), SECOND_LOOK_CONFIDENCE
        if not text or not self.grammar.accepts(text, self.expect):
            return text, 0.0  # nothing, or a sentence the audio ran out in the middle of
        return text, min(ceiling, self.least_certain_word(), fit_confidence(self.fit()))

    def _end_utt(self) -> str:
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return " ".join(hyp.hypstr.split()) if hyp is not None else ""

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
