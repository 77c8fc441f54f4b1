"""The receptionist's conversation as a pure state machine: events and the time in, actions out.

    greet ─▶ listen ─┬─ one clear match, heard clearly ─────────────▶ "Transferring you to …" → Transfer
                     ├─ one match, heard unclearly or a sound-alike of someone else
                     │                            ─▶ "Did you want …?" ─ yes ─▶ Transfer
                     ├─ two or more (two Sarahs) ─▶ "Sarah in Sales or Sarah in Support?" ─▶ …
                     ├─ "operator" / "reception" / 0 ─▶ the agent's fallback extension
                     └─ nothing ─▶ ask again once ─▶ fallback extension, or a polite goodbye
    at any moment: DTMF digits (an extension, 0 = fallback); silence timeout and the call's time
    limit end the call with a closing line.

No I/O and no clock: the caller of `Dialogue` passes `now` with every event, asks
`next_deadline()` and calls `tick(now)` then. The `Receptionist` does that for a live call; the
tests do it with plain numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from telephony.receptionist import prompts
from telephony.receptionist.asr import Hypothesis
from telephony.receptionist.digits import DigitCollector
from telephony.receptionist.grammar import (
    NO_PHRASES,
    OPERATOR_PHRASES,
    YES_PHRASES,
    Expectation,
    correction_of,
    words_of,
)
from telephony.receptionist.matching import AMBIGUITY_MARGIN, Candidate, DirectoryMatch, Matcher

DEFAULT_SILENCE_TIMEOUT = 30.0
DEFAULT_MAX_CALL_DURATION = 300.0
MAX_CHOICES = 3  # more than this and a list is no help: ask for the full name instead
# "No" to "Did you want …?" is progress, not a miss: the next try cannot land on that person
# again. After this many, the caller goes to the fallback extension.
MAX_REJECTED = 3
# Below REJECT_BELOW a hypothesis is treated as not heard; from TRANSFER_AT a single confident
# directory match is transferred at once; in between the receptionist asks "Did you want …?".
# Calibrated with bench/receptionist.py (see the confidence in asr.py).
REJECT_BELOW = 0.2
TRANSFER_AT = 0.8

_OPERATOR_WORDS = frozenset(word for phrase in OPERATOR_PHRASES for word in phrase.split())
_YES = frozenset(YES_PHRASES)
_NO = frozenset(NO_PHRASES)


# --- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class StopSpeaking:
    """Barge-in: cut the prompt that is playing (and drop any queued after it)."""


@dataclass(frozen=True)
class Listen:
    expect: Expectation = Expectation.REQUEST
    exclude: frozenset[str] = frozenset()  # directory phrases that name only people turned down


@dataclass(frozen=True)
class Transfer:
    extension: str
    display_name: str


class HangupReason(StrEnum):
    NOT_UNDERSTOOD = "not_understood"  # asked twice, no fallback extension
    SILENCE = "silence_timeout"
    TIME_LIMIT = "max_call_duration"
    TRANSFER_FAILED = "transfer_failed"


@dataclass(frozen=True)
class Hangup:
    reason: HangupReason


Action = Say | StopSpeaking | Listen | Transfer | Hangup


# --- settings and the record -----------------------------------------------------------------


@dataclass(frozen=True)
class AgentSettings:
    first_message: str = ""
    voice: str = "en-us"
    language: str = "en-US"
    fallback_extension: str = ""
    silence_timeout: float = DEFAULT_SILENCE_TIMEOUT
    max_call_duration: float = DEFAULT_MAX_CALL_DURATION

    @classmethod
    def from_agent(cls, agent: Any) -> AgentSettings:
        """From an `agents.models.Agent` (read as plain attributes: no Django import here)."""
        return cls(
            first_message=agent.first_message or "",
            voice=agent.voice or "en-us",
            language=agent.language or "en-US",
            fallback_extension=agent.fallback_extension or "",
            silence_timeout=float(agent.silence_timeout or DEFAULT_SILENCE_TIMEOUT),
            max_call_duration=float(agent.max_call_duration or DEFAULT_MAX_CALL_DURATION),
        )


class Outcome(StrEnum):
    TRANSFER = "transfer"
    CONFIRM = "confirm"
    CHOOSE = "choose"
    ASK_AGAIN = "ask_again"
    FALLBACK = "fallback"
    GOODBYE = "goodbye"
    IGNORED = "ignored"


@dataclass(frozen=True)
class HeardTurn:
    source: str  # "speech" or "dtmf"
    text: str  # recognised words, or the digits keyed in
    confidence: float
    heard_at: float  # end of speech, or the key that completed the number
    decided_at: float
    outcome: Outcome


@dataclass
class Understanding:
    """What the receptionist understood, for the call record."""

    turns: list[HeardTurn] = field(default_factory=list)
    extension: str | None = None  # where the call was sent
    display_name: str = ""
    method: str = ""  # "speech", "dtmf", "operator", "fallback"
    text: str = ""  # what was heard that decided it
    confidence: float | None = None
    heard_at: float | None = None  # the caller stopped speaking (or keyed the last digit) ...
    decided_at: float | None = None  # ... and this is when the transfer was decided
    hangup_reason: str | None = None

    @property
    def decision_seconds(self) -> float | None:
        if self.heard_at is None or self.decided_at is None:
            return None
        return self.decided_at - self.heard_at

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decision_seconds"] = self.decision_seconds
        return data


class State(StrEnum):
    GREETING = "greeting"
    LISTENING = "listening"
    CHOOSING = "choosing"
    CONFIRMING = "confirming"
    TRANSFERRING = "transferring"
    CLOSING = "closing"
    ENDED = "ended"


_CONVERSING = (State.GREETING, State.LISTENING, State.CHOOSING, State.CONFIRMING)


class Dialogue:
    def __init__(
        self,
        *,
        settings: AgentSettings,
        matcher: Matcher,
        started_at: float,
        retries: int = 1,
        reject_below: float = REJECT_BELOW,
        transfer_at: float = TRANSFER_AT,
    ) -> None:
        self.settings = settings
        self.matcher = matcher
        self.started_at = started_at
        self.retries = retries
        self.reject_below = reject_below
        self.transfer_at = transfer_at
        self.state = State.GREETING
        self.understanding = Understanding()
        self.misses = 0
        self._extensions = dict(matcher.extensions())
        self._digits = DigitCollector(self._extensions)
        self._prompts_playing = 0
        self._caller_speaking = False
        self._quiet_since = started_at  # the silence timeout counts from here
        self._choices: tuple[Candidate, ...] = ()
        self._proposed: Candidate | None = None
        self._transfer_target: Candidate | None = None
        self._rejected: set[str] = set()  # extensions the caller said "no" to
        self._excluded_phrases: frozenset[str] = frozenset()
        self._doubted: str | None = None  # who the last unclear request seemed to name

    # --- events ------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        return self._say(self.settings.first_message.strip() or prompts.DEFAULT_GREETING) + [Listen()]

    def prompt_finished(self, now: float) -> list[Action]:
        """A `Say` finished playing or was cut off."""
        self._prompts_playing = max(0, self._prompts_playing - 1)
        if self._prompts_playing == 0:
            self._quiet_since = now
            if self.state is State.GREETING:
                self.state = State.LISTENING
        return []

    def speech_started(self, now: float) -> list[Action]:
        if self.state not in _CONVERSING:
            return []
        self._caller_speaking = True
        if self.state is State.GREETING:
            self.state = State.LISTENING
        return self._barge_in()

    def speech_discarded(self, now: float) -> list[Action]:
        """What started as speech was too short to be a request (a cough, a click)."""
        self._caller_speaking = False
        self._quiet_since = now
        return []

    def heard(self, hypothesis: Hypothesis, *, speech_ended_at: float, now: float) -> list[Action]:
        """The recogniser's result for the utterance that ended at `speech_ended_at`."""
        self._caller_speaking = False
        self._quiet_since = now
        if self.state not in _CONVERSING:
            return []
        turn = _Turn(
            "speech", hypothesis.text, hypothesis.confidence, speech_ended_at, now, hypothesis.sound_alikes
        )
        if self.state is State.CHOOSING and hypothesis.confidence > 0:
            # One word out of two or three offered ("Sales"): a short answer fits the model less
            # well than a sentence does, and the choice is between people the caller asked for.
            picked = self._picked_choice(turn.text)
            if picked is not None:
                return self._transfer(turn, picked, method="speech")
        if not hypothesis.text or hypothesis.confidence < self.reject_below:
            return self._unsure(turn)
        if self.state is State.CONFIRMING:
            return self._answer_confirmation(turn)
        if self.state is State.CHOOSING:
            return self._answer_choice(turn)
        return self._request(turn)

    def digit(self, digit: str, now: float) -> list[Action]:
        if self.state not in _CONVERSING:
            return []
        self._quiet_since = now
        actions = self._barge_in()
        number = self._digits.press(digit, now)
        if number is not None:
            actions += self._dialled(number, now)
        return actions

    def tick(self, now: float) -> list[Action]:
        if self.state in (State.CLOSING, State.ENDED):
            return []
        if now >= self.started_at + self.settings.max_call_duration and self.state is not State.TRANSFERRING:
            return self._close(prompts.TIME_LIMIT_GOODBYE, HangupReason.TIME_LIMIT, interrupt=True)
        if self.state not in _CONVERSING:
            return []
        number = self._digits.handle_timeout(now)
        if number is not None:
            return self._dialled(number, now)
        if self._waiting_in_silence() and now >= self._quiet_since + self.settings.silence_timeout:
            return self._close(prompts.SILENCE_GOODBYE, HangupReason.SILENCE)
        return []

    def next_deadline(self) -> float | None:
        if self.state in (State.CLOSING, State.ENDED):
            return None
        deadlines = [self.started_at + self.settings.max_call_duration]
        if self.state in _CONVERSING:
            if (digits := self._digits.next_deadline()) is not None:
                deadlines.append(digits)
            if self._waiting_in_silence():
                deadlines.append(self._quiet_since + self.settings.silence_timeout)
        return min(deadlines)

    def transfer_failed(self, now: float) -> list[Action]:
        """The PBX refused the transfer or the target did not answer (486, 603, ...)."""
        if self.state is not State.TRANSFERRING or self._transfer_target is None:
            return []
        target = self._transfer_target
        fallback = self.settings.fallback_extension
        if fallback and target.extension != fallback:
            self.state = State.TRANSFERRING
            self._transfer_target = self._fallback_candidate()
            self.understanding.extension = fallback
            self.understanding.method = "fallback"
            return self._say(prompts.unavailable_then_fallback(target.spoken_name)) + [
                Transfer(fallback, self._transfer_target.display_name)
            ]
        return self._close(prompts.unavailable_goodbye(target.spoken_name), HangupReason.TRANSFER_FAILED)

    def transfer_succeeded(self, now: float) -> list[Action]:
        self.state = State.ENDED
        return []

    def caller_hung_up(self, now: float) -> list[Action]:
        if self.state is not State.ENDED:
            self.understanding.hangup_reason = self.understanding.hangup_reason or "caller_hung_up"
            self.state = State.ENDED
        return []

    @property
    def speaking(self) -> bool:
        return self._prompts_playing > 0

    # --- deciding ------------------------------------------------------------------------------

    def _request(self, turn: _Turn, *, said: str | None = None) -> list[Action]:
        """`said`: the request in what was heard, when not all of it ("no, I said …")."""
        said = turn.text if said is None else said
        found = _without(self.matcher.match(said), self._rejected)
        if found.ambiguous:
            return self._ask_choice(turn, _close_candidates(found))
        best = found.best
        sure = best is not None and found.confident and turn.confidence >= self.transfer_at
        if sure and not self._sounds_like_someone_else(turn, best):
            return self._transfer(turn, best, method="speech")
        if best is not None:
            return self._ask_confirmation(turn, best)
        if _OPERATOR_WORDS.intersection(words_of(said)):
            return self._to_fallback(turn, method="operator")
        return self._miss(turn)

    def _sounds_like_someone_else(self, turn: _Turn, best: Candidate) -> bool:
        """Whether a sound-alike of what was heard names another person still possible: the
        recogniser mishears such pairs with high confidence (the same voice the same way), and a
        wrong transfer costs the caller more than one "Did you want …?"."""
        for phrase in turn.sound_alikes:
            other = self.matcher.match(phrase).best
            if (
                other is not None
                and other.extension not in self._rejected
                and other.extension != best.extension
            ):
                return True
        return False

    def _unsure(self, turn: _Turn) -> list[Action]:
        """Heard too unclearly to act on. Once is a miss; the same person twice in a row (the
        caller repeated themselves) is worth asking about: "Did you want …?" settles it. So is a
        whole sentence naming someone when the next miss would end at the fallback: about half
        of such hearings are right (benchmark), and a truthful "no" costs one question. So is a
        person's first *and* last name heard together: 16 of 18 such unclear first hearings were
        right (bench/receptionist.py --quick --verbose), and asking again lost some of them."""
        if self.state is not State.LISTENING or not turn.text:
            return self._miss(turn)
        found = _without(self.matcher.match(turn.text), self._rejected)
        named = found.best.extension if found.best is not None and not found.ambiguous else None
        last_chance = self.misses >= self.retries and turn.confidence > 0
        if named is not None and (
            named == self._doubted or last_chance or _names_in_full(turn.text, found.best)
        ):
            return self._ask_confirmation(turn, found.best)
        self._doubted = named
        return self._miss(turn)

    def _answer_choice(self, turn: _Turn) -> list[Action]:
        picked = self._picked_choice(turn.text)
        if picked is not None:
            return self._transfer(turn, picked, method="speech")
        return self._request(turn)  # a new name altogether ("actually, John Smith")

    def _picked_choice(self, text: str) -> Candidate | None:
        said = set(words_of(text))
        scored = [(len(said & _describing_words(c)), c) for c in self._choices]
        best = max((score for score, _ in scored), default=0)
        picked = [c for score, c in scored if score == best]
        return picked[0] if best > 0 and len(picked) == 1 else None

    def _answer_confirmation(self, turn: _Turn) -> list[Action]:
        answer = " ".join(words_of(turn.text))
        if answer in _YES and self._proposed is not None:
            return self._transfer(turn, self._proposed, method="speech")
        correction = correction_of(turn.text)
        if (answer in _NO or correction is not None) and self._proposed is not None:
            self._rejected.add(self._proposed.extension)
            if len(self._rejected) >= MAX_REJECTED:
                return self._to_fallback(turn, method="fallback")
            self._excluded_phrases = self._phrases_only_for(self._rejected)
            self.misses, self._doubted = 0, None
            self.state = State.LISTENING
            if correction is not None:
                # "No, I said Sarah Jones": the no and the next request in one breath.
                return self._request(turn, said=correction)
            self._record(turn, Outcome.ASK_AGAIN)
            return self._say(prompts.ASK_AFTER_NO) + [self._listen(Expectation.REQUEST)]
        return self._miss(turn)

    def _dialled(self, number: str, now: float) -> list[Action]:
        turn = _Turn("dtmf", number, 1.0, now, now)
        if number == "0":
            return self._to_fallback(turn, method="operator")
        candidate = self._extensions.get(number)
        if candidate is not None:
            return self._transfer(turn, candidate, method="dtmf")
        return self._miss(turn, retry_prompt=prompts.no_such_extension(number))

    # --- what to do --------------------------------------------------------------------------

    def _transfer(self, turn: _Turn, candidate: Candidate, *, method: str) -> list[Action]:
        self._record(turn, Outcome.TRANSFER)
        self.state = State.TRANSFERRING
        self._transfer_target = candidate
        understanding = self.understanding
        understanding.extension = candidate.extension
        understanding.display_name = candidate.display_name
        understanding.method = method
        understanding.text = turn.text
        understanding.confidence = turn.confidence
        understanding.heard_at = turn.heard_at
        understanding.decided_at = turn.decided_at
        return self._say(prompts.transferring(candidate.spoken_name)) + [
            Transfer(candidate.extension, candidate.display_name)
        ]

    def _to_fallback(self, turn: _Turn, *, method: str) -> list[Action]:
        if not self.settings.fallback_extension:
            if method == "operator":
                return self._miss(turn, retry_prompt=prompts.NO_OPERATOR)
            self._record(turn, Outcome.GOODBYE)
            return self._close(prompts.NOT_FOUND_GOODBYE, HangupReason.NOT_UNDERSTOOD)
        self._record(turn, Outcome.FALLBACK)
        candidate = self._fallback_candidate()
        self.state = State.TRANSFERRING
        self._transfer_target = candidate
        understanding = self.understanding
        understanding.extension = candidate.extension
        understanding.display_name = candidate.display_name
        understanding.method = method
        understanding.text = turn.text
        understanding.confidence = turn.confidence
        understanding.heard_at = turn.heard_at
        understanding.decided_at = turn.decided_at
        return self._say(prompts.PUTTING_THROUGH) + [Transfer(candidate.extension, candidate.display_name)]

    def _miss(self, turn: _Turn, *, retry_prompt: str = prompts.ASK_AGAIN) -> list[Action]:
        self.misses += 1
        if self.misses > self.retries:
            return self._to_fallback(turn, method="fallback")
        self._record(turn, Outcome.ASK_AGAIN)
        if self.state is State.CHOOSING and retry_prompt == prompts.ASK_AGAIN:
            retry_prompt = "Sorry, " + _choice_question(self._choices)  # the same question, again
            return self._say(retry_prompt) + [self._listen(Expectation.REQUEST)]
        if self.state is State.CONFIRMING and turn.text and retry_prompt == prompts.ASK_AGAIN:
            return self._say(prompts.YES_OR_NO) + [Listen(Expectation.YES_NO)]
        self.state = State.LISTENING
        return self._say(retry_prompt) + [self._listen(Expectation.REQUEST)]

    def _ask_choice(self, turn: _Turn, candidates: tuple[Candidate, ...]) -> list[Action]:
        self._record(turn, Outcome.CHOOSE)
        self.state = State.CHOOSING
        self._choices = candidates
        return self._say(_choice_question(candidates)) + [self._listen(Expectation.REQUEST)]

    def _ask_confirmation(self, turn: _Turn, candidate: Candidate) -> list[Action]:
        self._record(turn, Outcome.CONFIRM)
        self.state = State.CONFIRMING
        self._proposed = candidate
        return self._say(prompts.confirm(candidate.spoken_name)) + [Listen(Expectation.YES_NO)]

    def _listen(self, expect: Expectation) -> Listen:
        return Listen(expect, self._excluded_phrases if expect is Expectation.REQUEST else frozenset())

    def _phrases_only_for(self, extensions: set[str]) -> frozenset[str]:
        """Directory phrases whose every close match is someone turned down ("porter" once
        Ken Porter was refused; not "sarah" while another Sarah is still possible)."""
        excluded = [number for number in extensions if number.isdigit()]  # "extension one oh two"
        for phrase in self.matcher.vocabulary():
            found = self.matcher.match(phrase)
            if found.best is None:
                continue
            top = found.best.score
            close = {c.extension for c in found.candidates if c.score >= top - AMBIGUITY_MARGIN}
            if close <= extensions:
                excluded.append(phrase)
        return frozenset(excluded)

    def _close(self, text: str, reason: HangupReason, *, interrupt: bool = False) -> list[Action]:
        actions: list[Action] = [StopSpeaking()] if interrupt and self.speaking else []
        if interrupt:
            self._prompts_playing = 0
        self.state = State.CLOSING
        self.understanding.hangup_reason = reason.value
        return actions + self._say(text) + [Hangup(reason)]

    def _say(self, text: str) -> list[Action]:
        self._prompts_playing += 1
        return [Say(text)]

    def _barge_in(self) -> list[Action]:
        if not self.speaking:
            return []
        self._prompts_playing = 0
        return [StopSpeaking()]

    def _waiting_in_silence(self) -> bool:
        return not self.speaking and not self._caller_speaking

    def _fallback_candidate(self) -> Candidate:
        number = self.settings.fallback_extension
        return self._extensions.get(number) or Candidate(extension=number, display_name="the operator")

    def _record(self, turn: _Turn, outcome: Outcome) -> None:
        self.understanding.turns.append(
            HeardTurn(turn.source, turn.text, turn.confidence, turn.heard_at, turn.decided_at, outcome)
        )


@dataclass(frozen=True)
class _Turn:
    source: str
    text: str
    confidence: float
    heard_at: float
    decided_at: float
    sound_alikes: tuple[str, ...] = ()


def _without(found: DirectoryMatch, rejected: set[str]) -> DirectoryMatch:
    """The match with the people the caller turned down taken out: never a sure thing then."""
    if not rejected or not any(c.extension in rejected for c in found.candidates):
        return found
    kept = tuple(c for c in found.candidates if c.extension not in rejected)
    if not kept:
        return DirectoryMatch((), ambiguous=False, confident=False)
    close = [c for c in kept if c.score >= kept[0].score - AMBIGUITY_MARGIN]
    return DirectoryMatch(kept, ambiguous=found.ambiguous and len(close) > 1, confident=False)


def _names_in_full(text: str, candidate: Candidate) -> bool:
    """Whether `text` says all of the candidate's name, and that name has two words or more
    ("Jake Harris", not "Sales"): a grammar rarely assembles a whole name out of noise."""
    name = words_of(candidate.spoken_name)
    return len(name) >= 2 and set(name) <= set(words_of(text))


def _close_candidates(found: DirectoryMatch) -> tuple[Candidate, ...]:
    top = found.candidates[0].score
    return tuple(c for c in found.candidates if c.score >= top - AMBIGUITY_MARGIN)


def _describing_words(candidate: Candidate) -> set[str]:
    words = set(words_of(candidate.department)) | set(words_of(candidate.spoken_name))
    words |= set(words_of(candidate.display_name)) | set(words_of(" ".join(candidate.extension)))
    return words


def _choice_question(candidates: tuple[Candidate, ...]) -> str:
    """ "Sarah in Sales or Sarah in Support?" when departments tell them apart, else full names."""
    if len(candidates) > MAX_CHOICES:
        first = words_of(candidates[0].spoken_name)[:1]
        name = first[0].capitalize() if first else "they"
        return f"There are several people called {name}. Please say their full name or department."
    departments = [c.department for c in candidates]
    first_names = {c.spoken_name.split()[0] for c in candidates if c.spoken_name}
    if all(departments) and len({d.casefold() for d in departments}) == len(departments):
        name = next(iter(first_names)) if len(first_names) == 1 else None
        labels = [f"{name or c.spoken_name} in {c.department}" for c in candidates]
    else:
        labels = [c.spoken_name for c in candidates]
    if len({label.casefold() for label in labels}) < len(labels):
        labels = [f"{c.spoken_name} on extension {' '.join(c.extension)}" for c in candidates]
    return prompts.which_one(labels)
