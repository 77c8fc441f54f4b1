"""The receptionist's accuracy offline, on a held-out directory (or the benchmark's), so that what
is tuned on bench/receptionist.py is checked on names and phrasings it never saw.

No call and no real time: each caller's utterances go through the phone line (espeak-ng voice,
band-limit, line noise, G.711) and are decoded by the same recogniser code (`asr._Decoders`,
the call's decoder, its cepstral mean carried from turn to turn) and answered by the same
`Dialogue`. The caller answers like the benchmark's (`receptionist.answer_to`). Turn detection
is not simulated: an utterance is 0.3 s of line noise, the speech, 0.15 s of line noise.

Held-out directory: 32 other people with sound-alike names (Rachel Moore / Rachel Morgan,
Ted Walsh / Ed Welsh, Neil Shaw / Nell Shore ...), other departments and aliases, and other
phrasings ("could I speak to …" -- not a lead-in of the grammar -- "… thanks", "I'd like to talk
to … please"); plus requests for people who are not in the directory (they must not be
transferred to anyone but the fallback).

Printed: first hearings (decoded to the right person; transferred at once, right and wrong;
confidence of right / wrong / nobody hearings) and whole calls (right extension, wrong, fallback,
no transfer), by voice.

    .venv/bin/python bench/receptionist_heldout.py                  # held-out directory
    .venv/bin/python bench/receptionist_heldout.py --directory bench
    .venv/bin/python bench/receptionist_heldout.py --dump hearings.tsv  # signals for calibration
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import random
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import receptionist as bench  # noqa: E402

from telephony.media.codecs import Resampler  # noqa: E402
from telephony.receptionist import asr  # noqa: E402
from telephony.receptionist.dialogue import (  # noqa: E402
    AgentSettings,
    Dialogue,
    Hangup,
    Listen,
    Say,
    Transfer,
)
from telephony.receptionist.matching import DirectoryEntry, directory_matcher, spoken_vocabulary  # noqa: E402
from telephony.receptionist.phoneline import on_the_line  # noqa: E402

FALLBACK = bench.FALLBACK
PEOPLE = [
    ("Rachel Moore", "Finance", ("finance",)),
    ("Rachel Morgan", "Shipping", ("shipping",)),
    ("Bob Lane", "Engineering", ("engineering",)),
    ("Rob Kane", "Engineering", ()),
    ("Nick Ross", "Purchasing", ("purchasing",)),
    ("Rick Rose", "Training", ("training",)),
    ("Jill Price", "Human resources", ("personnel",)),
    ("Bill Bryce", "Finance", ()),
    ("Greg Lewis", "Customer service", ("customer service",)),
    ("Meg Lewin", "Customer service", ()),
    ("Tina Ward", "Research", ("research",)),
    ("Dina Ford", "Quality", ("quality",)),
    ("Sam Fox", "IT", ("help desk",)),
    ("Pam Knox", "Shipping", ()),
    ("Luke Reed", "Research", ()),
    ("Lucy Reeves", "Training", ()),
    ("Neil Shaw", "Quality", ()),
    ("Nell Shore", "Training", ()),
    ("Ted Walsh", "Purchasing", ()),
    ("Ed Welsh", "Engineering", ()),
    ("Amy Cole", "Finance", ()),
    ("Annie Coles", "Research", ()),
    ("Joe Grant", "Customer service", ()),
    ("Joel Brant", "IT", ()),
    ("Karen Holt", "Human resources", ()),
    ("Carol Hoyt", "Shipping", ()),
    ("Vince Dale", "IT", ()),
    ("Vicky Gale", "Research", ()),
    ("Ruth Lamb", "Quality", ()),
    ("Roger Lam", "Purchasing", ()),
    ("Oscar Dunn", "IT", ()),
    ("Oliver Dean", "Engineering", ()),
]
TEMPLATES = ("could I speak to {name}", "{name} thanks", "I'd like to talk to {name} please", "{name}")
ALIAS_TEMPLATE = "{alias} thanks"
NUMBERS = ("204", "213", "226")
# People who are not in the directory: the right outcome is the fallback (or asking again), never
# a transfer to someone.
NOBODY = (
    "could I speak to Robert Downey",
    "Gregory Peck please",
    "the cafeteria thanks",
    "can I speak to Susan Wright",
    "Harold Finch",
    "I'd like to talk to the manager please",
)


def heldout_directory() -> list[DirectoryEntry]:
    entries = [DirectoryEntry(FALLBACK, "Reception", "", "Reception")]
    for index, (owner, department, aliases) in enumerate(PEOPLE):
        entries.append(DirectoryEntry(str(201 + index), owner, owner, department, aliases))
    return entries


def heldout_requests(entries: list[DirectoryEntry]) -> list[bench.Request]:
    rng = random.Random(21)
    requests: list[bench.Request] = []
    for entry in entries[1:]:
        template = rng.choice(TEMPLATES)
        requests.append(
            bench.Request(
                template.format(name=entry.owner), entry.number, entry.owner, entry.department, entry.owner
            )
        )
        for alias in entry.aliases:
            requests.append(
                bench.Request(
                    ALIAS_TEMPLATE.format(alias=alias), entry.number, entry.owner, entry.department, alias
                )
            )
    digit_names = ["oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for number in NUMBERS:
        entry = next(e for e in entries if e.number == number)
        spoken = " ".join(digit_names[int(d)] for d in number)
        requests.append(
            bench.Request(
                f"extension {spoken} please", number, entry.owner, entry.department, f"extension {spoken}"
            )
        )
    for text in NOBODY:
        requests.append(bench.Request(text, "", "", "", text))
    return requests


@dataclass
class Hearing:
    """One utterance decoded: what the confidence is made of."""

    expect: str
    said: str
    text: str
    confidence: float
    posterior: float
    fit: float
    second_look: bool
    right: bool | None  # names the wanted person (None: names nobody / not a request)


@dataclass
class CallResult:
    case: bench.Case
    transferred_to: str | None
    turns: list[str] = field(default_factory=list)
    hearings: list[Hearing] = field(default_factory=list)
    first_outcome: str = ""


_process_decoders: list[asr._Decoders] = []  # one per worker process, reused from call to call


def _decoders(model: asr.AcousticModel, grammar) -> asr._Decoders:
    if not _process_decoders or _process_decoders[0].grammar is not grammar:
        _process_decoders[:] = [asr._Decoders(model, grammar, dict(asr.DECODER_OPTIONS))]
    decoders = _process_decoders[0]
    decoders.decoder.set_cmn(asr.TELEPHONE_CMN)  # a new call
    return decoders


def offline_call(
    case: bench.Case,
    *,
    audio: bench.Audio,
    model,
    grammar,
    matcher,
    settings,
    first_only: bool = False,
    names_only_first: bool = False,
) -> CallResult:
    request = case.request
    dialogue = Dialogue(settings=settings, matcher=matcher, started_at=0.0)
    decoders = _decoders(model, grammar)
    result = CallResult(case, None)
    actions = dialogue.start()
    last_prompt, asked, said, now = "", "", 0, 0.0
    while True:
        listen = None
        for action in actions:
            if isinstance(action, Say):
                last_prompt = action.text
            elif isinstance(action, Transfer):
                result.transferred_to = action.extension
                return result
            elif isinstance(action, Hangup):
                return result
            elif isinstance(action, Listen):
                listen = action
        if listen is None or said >= bench.MAX_CALLER_TURNS:
            return result
        if last_prompt.startswith("Did you want"):
            asked = last_prompt
        text = request.text if said == 0 else bench.answer_to(last_prompt, request, asked=asked)
        if said == 0 and names_only_first:
            text = request.core
        if not text:  # nothing to say, or nobody to name in an answer
            return result
        said += 1
        speech = audio.voices[(text, case.voice, case.speed)]
        pcm8k = on_the_line(
            speech, law=case.law, noise_rms=case.noise, trail_silence=0.15, seed=case.seed + said
        )
        pcm16k = Resampler(8000, 16000).convert(pcm8k)
        decoders.start(listen.expect, listen.exclude, lead_ins=not (said == 1 and names_only_first))
        decoders.process(pcm16k)
        heard, confidence = decoders.end()
        named = matcher.match(heard).best if heard else None
        result.hearings.append(
            Hearing(
                expect=listen.expect.value,
                said=text,
                text=heard,
                confidence=confidence,
                posterior=decoders.least_certain_word() if heard else 0.0,
                fit=decoders.fit() if heard else float("-inf"),
                second_look=decoders.second_look,
                right=(named.extension == request.extension) if named and request.extension else None,
            )
        )
        alikes = grammar.sound_alikes_of(heard) if confidence > 0 else ()
        hypothesis = asr.Hypothesis(heard, confidence, listen.expect, len(pcm16k) / 32000, alikes)
        now += 5.0
        actions = dialogue.heard(hypothesis, speech_ended_at=now, now=now)
        turn = dialogue.understanding.turns[-1] if dialogue.understanding.turns else None
        if turn is not None:
            result.turns.append(f"{text!r}: {heard!r} ({confidence:.2f}) -> {turn.outcome.value}")
            if said == 1:
                result.first_outcome = turn.outcome.value
        if first_only:
            transfers = [a.extension for a in actions if isinstance(a, Transfer)]
            result.transferred_to = transfers[0] if transfers else None
            return result


_shared: dict = {}


def _run(case: bench.Case) -> CallResult:
    return offline_call(case, **_shared)


def main(args: argparse.Namespace) -> None:
    if args.floor is not None:
        asr.BAND_FLOOR_RMS = args.floor
    if args.fit_midpoint is not None:
        asr.FIT_MIDPOINT = args.fit_midpoint
    if args.directory == "bench":
        entries = bench.build_directory()
        requests = bench.build_requests(entries, quick=False)
    else:
        entries = heldout_directory()
        requests = heldout_requests(entries)
    matcher = directory_matcher(entries)
    cases = bench.make_cases(requests, args.voices, args.speeds, random.Random(5))
    started = time.perf_counter()
    audio = bench.Audio()
    answers = (
        {"yes", "no"}
        | {r.department for r in requests if r.department}
        | {r.name for r in requests if r.name}
    )
    texts = {r.text for r in requests} | {r.core for r in requests} | answers
    cache = Path(args.audio_cache) if args.audio_cache else None
    if cache is not None and cache.exists():
        audio.voices = pickle.loads(cache.read_bytes())
    missing = {
        t for t in texts if any((t, v, s) not in audio.voices for v in args.voices for s in args.speeds)
    }
    audio.prepare(missing, args.voices, args.speeds)
    if cache is not None and missing:
        cache.write_bytes(pickle.dumps(audio.voices))
    synthesised = time.perf_counter() - started
    model = asr.default_model()
    grammar = model.grammar(spoken_vocabulary(matcher))
    settings = AgentSettings(fallback_extension=FALLBACK)
    started = time.perf_counter()
    # Processes, not threads: the decoder holds the GIL. Forked, so they share what is set up here.
    _shared.update(
        audio=audio,
        model=model,
        grammar=grammar,
        matcher=matcher,
        settings=settings,
        first_only=args.first_only,
        names_only_first=args.names_only_first,
    )
    with ProcessPoolExecutor(
        max_workers=args.workers, mp_context=multiprocessing.get_context("fork")
    ) as pool:
        results = []
        for done, result in enumerate(pool.map(_run, cases, chunksize=4), start=1):
            results.append(result)
            if done % 50 == 0:
                print(f"  {done}/{len(cases)} calls", file=sys.stderr, flush=True)
    decoded = time.perf_counter() - started
    print(
        f"{args.directory} directory: {len(entries)} extensions, {len(requests)} requests x {len(args.voices)} voices"
        f" x {len(args.speeds)} speeds = {len(cases)} calls (audio {synthesised:.0f} s, decoding {decoded:.0f} s)"
    )
    report(results, verbose=args.verbose)
    if args.dump:
        with open(args.dump, "w") as out:
            out.write(
                "voice\tspeed\tturn\texpect\tsaid\theard\tconfidence\tposterior\tfit\tsecond_look\tright\n"
            )
            for r in results:
                for n, h in enumerate(r.hearings):
                    out.write(
                        f"{r.case.voice}\t{r.case.speed}\t{n}\t{h.expect}\t{h.said}\t{h.text}\t{h.confidence:.3f}\t"
                        f"{h.posterior:.3f}\t{h.fit:.3f}\t{int(h.second_look)}\t{h.right}\n"
                    )


def report(results: list[CallResult], *, verbose: bool) -> None:
    people = [r for r in results if r.case.request.extension]
    nobody = [r for r in results if not r.case.request.extension]
    firsts = [r.hearings[0] for r in people if r.hearings]
    decoded_right = sum(bool(h.right) for h in firsts)
    at_once_right = sum(
        r.first_outcome == "transfer"
        and r.transferred_to == r.case.request.extension
        and len(r.hearings) == 1
        for r in people
    )
    at_once_wrong = sum(
        r.first_outcome == "transfer" and r.transferred_to not in (r.case.request.extension, FALLBACK)
        for r in people
    )
    n = len(people)
    print(
        f"first hearings: decoded to the right person {decoded_right}/{n} = {100 * decoded_right / n:.1f} %;"
        f" transferred at once: right {at_once_right} ({100 * at_once_right / n:.1f} %), wrong {at_once_wrong}"
    )
    for label, group in (
        ("right", [h for h in firsts if h.right]),
        ("wrong", [h for h in firsts if h.right is False]),
        ("nobody", [r.hearings[0] for r in nobody if r.hearings]),
    ):
        confidences = sorted(h.confidence for h in group)
        if confidences:
            buckets = Counter("<0.2" if c < 0.2 else "0.2-0.8" if c < 0.8 else ">=0.8" for c in confidences)
            print(
                f"  {label:6} hearings {len(group):3}: confidence <0.2 {buckets['<0.2']}, 0.2-0.8 {buckets['0.2-0.8']},"
                f" >=0.8 {buckets['>=0.8']}"
            )
    right = sum(r.transferred_to == r.case.request.extension for r in people)
    fallback = sum(r.transferred_to == FALLBACK for r in people)
    none = sum(r.transferred_to is None for r in people)
    wrong = n - right - fallback - none
    print(
        f"calls: right extension {right}/{n} = {100 * right / n:.1f} %, wrong {wrong}, fallback {fallback},"
        f" no transfer {none}"
    )
    groups = Counter(r.case.voice for r in people)
    right_in = Counter(r.case.voice for r in people if r.transferred_to == r.case.request.extension)
    print("  by voice: " + ", ".join(f"{v} {100 * right_in[v] / k:.0f} %" for v, k in groups.items()))
    to_someone = sum(r.transferred_to not in (None, FALLBACK) for r in nobody)
    if nobody:
        print(f"nobody requests: {len(nobody)} calls, transferred to someone {to_someone}")
    if verbose:
        print("\nnot right:")
        for r in results:
            if r.transferred_to != (r.case.request.extension or FALLBACK) and not (
                not r.case.request.extension and r.transferred_to is None
            ):
                c = r.case
                print(f"  {c.voice:9} {c.speed} noise {c.noise:>4}: {c.request.text!r} -> {r.transferred_to}")
                print("      " + "; ".join(r.turns))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--directory", choices=("heldout", "bench"), default="heldout")
    parser.add_argument("--voices", nargs="+", default=list(bench.VOICES))
    parser.add_argument("--speeds", nargs="+", type=int, default=list(bench.SPEEDS))
    parser.add_argument("--workers", type=int, default=2, help="decoding processes")
    parser.add_argument("--floor", type=float, help="the 4-8 kHz noise floor's RMS (asr.BAND_FLOOR_RMS)")
    parser.add_argument(
        "--first-only",
        action="store_true",
        help="first hearings only (the calls' figures are then meaningless)",
    )
    parser.add_argument(
        "--names-only-first",
        action="store_true",
        help="experiment: the first request is just the name, names-only grammar",
    )
    parser.add_argument("--fit-midpoint", type=float, help="asr.FIT_MIDPOINT")
    parser.add_argument("--audio-cache", help="keep the synthesised callers in this file between runs")
    parser.add_argument("--dump", help="write every hearing's confidence signals to this TSV file")
    parser.add_argument("--verbose", action="store_true")
    main(parser.parse_args())
