"""How well the built-in receptionist understands callers, how fast it decides, what it costs.

A generated directory of 32 people with sound-alike names (Jones/Johns/Jonas, Miller/Mills/Miles,
Tom/Tim, Mark/Mike ...) and departments with aliases. Callers ask for them ("Tim Hall please",
"can I speak to Mary Johnson", "the billing team", "extension one oh four") in several espeak-ng
voices and speeds, with light line noise, through G.711 µ-law or A-law, and talk to the real
receptionist (turn detection, pocketsphinx, the dialogue, TTS) over an in-memory call paced in
real time, several calls at once. The caller answers "Did you want …?" truthfully and repeats
itself when asked again.

Printed:
- accuracy: calls that reached the right extension (the goal is >= 95 %), wrong transfers,
  calls that ended at the fallback; and what the first turn led to (transfer, confirmation
  question, asked again);
- decision time: from the moment the caller's voice stopped to the transfer decision, p50/p99
  (goal <= 300 ms p99), and the part of it that is computing (recogniser + dialogue);
- CPU: process CPU per concurrently recognising call (100 % = one core).

    .venv/bin/python bench/receptionist.py                     # 4 voices x 2 speeds, 12 calls at once
    .venv/bin/python bench/receptionist.py --quick             # one voice, a third of the requests
    .venv/bin/python bench/receptionist.py --concurrency 24 --voices en-us en-gb
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telephony.receptionist import prompts  # noqa: E402
from telephony.receptionist.asr import PocketsphinxRecognizer, default_model  # noqa: E402
from telephony.receptionist.dialogue import AgentSettings, Outcome  # noqa: E402
from telephony.receptionist.matching import DirectoryEntry, directory_matcher, spoken_vocabulary  # noqa: E402
from telephony.receptionist.phoneline import on_the_line, spoken  # noqa: E402
from telephony.receptionist.receptionist import Receptionist  # noqa: E402
from telephony.receptionist.scripted_call import CallerTurn, PlayedPrompt, ScriptedCall  # noqa: E402
from telephony.receptionist.tts import EspeakSynthesizer, Prompt  # noqa: E402

FALLBACK = "100"
PEOPLE = [
    ("Sarah Jones", "Sales", ("sales team",)),
    ("John Smith", "Support", ("support", "tech")),
    ("Sarah Miller", "Support", ()),
    ("Mary Johnson", "Accounts", ("accounts", "billing")),
    ("Marie Jensen", "Marketing", ("marketing",)),
    ("Tom Hall", "Warehouse", ("warehouse",)),
    ("Tim Hill", "Warehouse", ()),
    ("Mark Mills", "Sales", ()),
    ("Mike Miles", "Legal", ("legal",)),
    ("Dan Brown", "Support", ()),
    ("Don Baker", "Accounts", ()),
    ("Ann Barker", "Marketing", ()),
    ("Anna Taylor", "Sales", ()),
    ("Hannah Tyler", "Payroll", ("payroll",)),
    ("Ben Carter", "Dispatch", ("dispatch",)),
    ("Ken Porter", "Support", ()),
    ("Jack Parker", "Sales", ()),
    ("Jake Harris", "Legal", ()),
    ("Kate Harrison", "Accounts", ()),
    ("Kay Nelson", "Marketing", ()),
    ("Chris Wilson", "Support", ()),
    ("Craig Watson", "Warehouse", ()),
    ("Paul Bell", "Sales", ()),
    ("Peter Ball", "Dispatch", ()),
    ("Laura Green", "Payroll", ()),
    ("Lauren Gray", "Legal", ()),
    ("David Fisher", "Support", ()),
    ("Daniel Fletcher", "Sales", ()),
    ("Emma Johns", "Marketing", ()),
    ("Emily Jonas", "Accounts", ()),
    ("Steven Clark", "Warehouse", ()),
    ("Stephanie Clarke", "Reception desk", ("front desk",)),
]
# A "no" to "Did you want …?" is followed by the request again, so a call that needs two checks
# takes six turns; the caller gives up after that.
MAX_CALLER_TURNS = 7
TEMPLATES = ("{name} please", "can I speak to {name}", "transfer me to {name}", "{name}")
VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3")
SPEEDS = (140, 170)


def build_directory() -> list[DirectoryEntry]:
    entries = [DirectoryEntry(FALLBACK, "Reception", "", "Reception")]
    for index, (owner, department, aliases) in enumerate(PEOPLE):
        entries.append(DirectoryEntry(str(101 + index), owner, owner, department, aliases))
    return entries


@dataclass(frozen=True)
class Request:
    text: str
    extension: str
    name: str  # what the receptionist should call the target
    department: str


def build_requests(entries: list[DirectoryEntry], *, quick: bool) -> list[Request]:
    rng = random.Random(8)
    requests: list[Request] = []
    for entry in entries[1:]:
        template = rng.choice(TEMPLATES)
        requests.append(
            Request(template.format(name=entry.owner), entry.number, entry.owner, entry.department)
        )
        for alias in entry.aliases:
            requests.append(Request(f"{alias} please", entry.number, entry.owner, entry.department))
    for number in ("104", "117", "125"):
        entry = next(e for e in entries if e.number == number)
        spoken = " ".join(
            ["oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][int(d)]
            for d in number
        )
        requests.append(Request(f"extension {spoken}", number, entry.owner, entry.department))
    return requests[::3] if quick else requests


@dataclass
class Case:
    request: Request
    voice: str
    speed: int
    law: str
    noise: float
    seed: int


@dataclass
class Result:
    case: Case
    transferred_to: str | None
    first_outcome: str
    first_confidence: float | None
    first_text: str
    decision_ms: float | None
    hangover_ms: float | None
    compute_ms: float | None
    turns: int
    call_seconds: float
    heard: tuple[str, ...] = ()  # every turn: 'text' (confidence) -> outcome


class RecordingTts:
    """The real synthesiser, remembering which text each prompt's audio was."""

    def __init__(self, inner: EspeakSynthesizer) -> None:
        self.inner = inner
        self.text_of: dict[int, str] = {}

    async def render(self, text: str, *, voice: str | None = None, language: str | None = None) -> Prompt:
        prompt = await self.inner.render(text, voice=voice, language=language)
        self.text_of[id(prompt.pcm8k)] = text
        return prompt


@dataclass
class Audio:
    """Caller voices, synthesised up front in parallel (espeak-ng and the band-limiting filter are
    the slow part); putting one on the line (noise, G.711) is fast enough to do mid-call."""

    voices: dict[tuple[str, str, int], bytes] = field(default_factory=dict)

    def prepare(self, texts: set[str], voices: list[str], speeds: list[int]) -> None:
        keys = [(text, voice, speed) for text in texts for voice in voices for speed in speeds]
        with ThreadPoolExecutor(max_workers=4) as pool:
            for key, pcm in zip(
                keys, pool.map(lambda k: spoken(k[0], voice=k[1], speed=k[2]), keys), strict=True
            ):
                self.voices[key] = pcm

    def get(self, text: str, case: Case, seed: int) -> bytes:
        speech = self.voices[(text, case.voice, case.speed)]
        return on_the_line(speech, law=case.law, noise_rms=case.noise, seed=seed)


def caller_for(case: Case, audio: Audio, tts: RecordingTts) -> ScriptedCall:
    request = case.request
    said: list[str] = []

    def respond(played: list[PlayedPrompt]) -> CallerTurn | None:
        if len(said) >= MAX_CALLER_TURNS or not played:
            return None
        last = tts.text_of.get(id(played[-1].pcm), "")
        if last == prompts.YES_OR_NO:  # the last "Did you want …?" again, as a real caller would
            asked = [tts.text_of.get(id(p.pcm), "") for p in played]
            proposal = next((text for text in reversed(asked) if text.startswith("Did you want")), "")
            answer = "yes" if proposal == prompts.confirm(request.name) else "no"
        elif last.startswith("Did you want"):
            answer = "yes" if last == prompts.confirm(request.name) else "no"
        elif last.endswith("?") and " or " in last:  # which of them
            answer = request.department if f"in {request.department}" in last else request.name
        elif last in (prompts.ASK_AGAIN, prompts.ASK_AFTER_NO, prompts.YES_OR_NO) or last.startswith("Sorry"):
            answer = request.text
        else:
            return None
        said.append(answer)
        return CallerTurn(pcm=audio.get(answer, case, case.seed + len(said)), text=answer, pause=0.4)

    first = CallerTurn(pcm=audio.get(request.text, case, case.seed), text=request.text, pause=0.4)
    said.append(request.text)
    return ScriptedCall([first], realtime=True, max_seconds=90.0, noise_rms=case.noise, respond=respond)


FINISH_MS: list[float] = []  # how long recognizer.finish() took: the recogniser's share of a decision


class TimedRecognizer(PocketsphinxRecognizer):
    async def finish(self):
        started = time.perf_counter()
        try:
            return await super().finish()
        finally:
            FINISH_MS.append(1000 * (time.perf_counter() - started))


async def run_case(
    case: Case, *, audio: Audio, tts: RecordingTts, matcher, settings: AgentSettings
) -> Result:
    call = caller_for(case, audio, tts)
    recognizer = TimedRecognizer()
    receptionist = Receptionist(
        call=call, settings=settings, matcher=matcher, tts=tts, recognizer=recognizer, clock=call.clock
    )
    understanding = await receptionist.run()
    first = understanding.turns[0] if understanding.turns else None
    decision_ms = compute_ms = hangover_ms = None
    if understanding.decided_at is not None and understanding.heard_at is not None:
        # From the end of the caller's voice in the turn that decided (as spoken, not as detected).
        voice_end = max((t for t in call.speech_ended_at if t <= understanding.heard_at + 0.3), default=None)
        if voice_end is not None and understanding.method == "speech":
            decision_ms = 1000 * (understanding.decided_at - voice_end)
            hangover = receptionist.turns.last_hangover
            compute_ms = 1000 * (understanding.decided_at - understanding.heard_at - hangover)
            hangover_ms = 1000 * hangover
    return Result(
        case=case,
        transferred_to=call.transfers[-1] if call.transfers else None,
        first_outcome=first.outcome.value if first else "none",
        first_confidence=first.confidence if first else None,
        first_text=first.text if first else "",
        decision_ms=decision_ms,
        hangover_ms=hangover_ms,
        compute_ms=compute_ms,
        turns=len(understanding.turns),
        call_seconds=call.clock(),
        heard=tuple(f"{t.text!r} ({t.confidence:.2f}) -> {t.outcome.value}" for t in understanding.turns),
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def main(args: argparse.Namespace) -> None:
    entries = build_directory()
    matcher = directory_matcher(entries)
    requests = build_requests(entries, quick=args.quick)
    rng = random.Random(3)
    cases = [
        Case(
            r,
            voice,
            speed,
            rng.choice(("ulaw", "alaw")),
            rng.choice((10.0, 30.0, 60.0)),
            rng.randrange(1 << 20),
        )
        for voice in args.voices
        for speed in args.speeds
        for r in requests
    ]
    print(
        f"{len(entries)} extensions, {len(requests)} requests x {len(args.voices)} voices x {len(args.speeds)} speeds"
        f" = {len(cases)} calls, {args.concurrency} at once ({type(matcher).__name__})"
    )

    started = time.perf_counter()
    audio = Audio()
    answers = {"yes", "no"} | {r.department for r in requests} | {r.name for r in requests}
    audio.prepare({r.text for r in requests} | answers, args.voices, args.speeds)
    print(f"caller audio synthesised in {time.perf_counter() - started:.1f} s")

    settings = AgentSettings(fallback_extension=FALLBACK)
    with tempfile.TemporaryDirectory() as cache:
        tts = RecordingTts(EspeakSynthesizer(cache_dir=cache))
        names = [e.owner or e.display_name for e in entries]
        await tts.inner.prerender(
            [*prompts.FIXED, *(prompts.transferring(n) for n in names), *(prompts.confirm(n) for n in names)]
        )
        default_model().grammar(spoken_vocabulary(matcher))
        semaphore = asyncio.Semaphore(args.concurrency)

        async def bounded(case: Case) -> Result:
            async with semaphore:
                return await run_case(case, audio=audio, tts=tts, matcher=matcher, settings=settings)

        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        wall_before = time.perf_counter()
        results = await asyncio.gather(*(bounded(c) for c in cases))
        wall = time.perf_counter() - wall_before
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    report(results, cpu=cpu, wall=wall, verbose=args.verbose)


def report(results: list[Result], *, cpu: float, wall: float, verbose: bool) -> None:
    total = len(results)
    right = sum(r.transferred_to == r.case.request.extension for r in results)
    fallback = sum(r.transferred_to == FALLBACK and r.case.request.extension != FALLBACK for r in results)
    none = sum(r.transferred_to is None for r in results)
    wrong = total - right - fallback - none
    print(f"\nright extension: {right}/{total} = {100 * right / total:.1f} %  (goal >= 95 %)")
    print(
        f"wrong extension: {wrong} ({100 * wrong / total:.1f} %), fallback: {fallback}, no transfer: {none}"
    )
    first = Counter(r.first_outcome for r in results)
    print("first turn led to: " + ", ".join(f"{k} {v}" for k, v in first.most_common()))
    first_right = sum(
        r.first_outcome == Outcome.TRANSFER.value
        and r.transferred_to == r.case.request.extension
        and r.turns == 1
        for r in results
    )
    print(f"right at the first turn, no question asked: {first_right} ({100 * first_right / total:.1f} %)")
    for label, key in (("voice", lambda r: r.case.voice), ("speed", lambda r: r.case.speed)):
        groups = Counter(key(r) for r in results)
        right_in = Counter(key(r) for r in results if r.transferred_to == r.case.request.extension)
        print(
            f"right by {label}: "
            + ", ".join(f"{g} {100 * right_in[g] / n:.0f} % ({right_in[g]}/{n})" for g, n in groups.items())
        )

    decisions = [r.decision_ms for r in results if r.decision_ms is not None]
    computes = [r.compute_ms for r in results if r.compute_ms is not None]
    if decisions:
        print(
            f"\nend of speech -> transfer decision: p50 {percentile(decisions, 0.5):.0f} ms, "
            f"p99 {percentile(decisions, 0.99):.0f} ms, max {max(decisions):.0f} ms (n={len(decisions)}; goal p99 <= 300 ms)"
        )
        print(
            f"  of which computing after the VAD hangover: p50 {percentile(computes, 0.5):.0f} ms, "
            f"p99 {percentile(computes, 0.99):.0f} ms"
        )
    if FINISH_MS:
        print(
            f"  recogniser finish() after the turn ended: p50 {percentile(FINISH_MS, 0.5):.0f} ms, "
            f"p99 {percentile(FINISH_MS, 0.99):.0f} ms, max {max(FINISH_MS):.0f} ms (n={len(FINISH_MS)})"
        )
    call_seconds = sum(r.call_seconds for r in results)
    concurrent = call_seconds / wall
    print(
        f"\nCPU: {cpu:.1f} s for {call_seconds:.0f} call-seconds ({concurrent:.1f} calls at once on average): "
        f"{100 * cpu / call_seconds:.1f} % of a core per concurrent call; wall {wall:.0f} s"
    )
    if verbose:
        slowest = sorted((r for r in results if r.decision_ms is not None), key=lambda r: -r.decision_ms)
        print("\nslowest decisions (end of voice -> decision = VAD lag + hangover + computing):")
        for r in slowest[:6]:
            print(
                f"  {r.decision_ms:4.0f} ms: hangover {r.hangover_ms:3.0f}, computing {r.compute_ms:3.0f}  "
                f"{r.case.voice} {r.case.speed}: {r.heard[-1]}"
            )
        print("\nmisunderstood:")
        for r in results:
            if r.transferred_to != r.case.request.extension:
                c = r.case
                print(
                    f"  {c.voice:9} {c.speed} {c.law} noise {c.noise:>4}: {c.request.text!r} -> heard {r.first_text!r} "
                    f"({r.first_confidence or 0:.2f}, {r.first_outcome}) -> {r.transferred_to} "
                    f"(wanted {c.request.extension})"
                )
                print("      " + "; ".join(r.heard))
        confidences = [(r.first_confidence, r.first_text, r.case.request.text) for r in results]
        print("\nfirst-turn confidences (sorted):")
        for confidence, heard, wanted in sorted(confidences, key=lambda x: x[0] or 0):
            print(f"  {confidence or 0:.2f}  {heard!r:40} wanted {wanted!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voices", nargs="+", default=list(VOICES))
    parser.add_argument("--speeds", nargs="+", type=int, default=list(SPEEDS))
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    asyncio.run(main(parser.parse_args()))
