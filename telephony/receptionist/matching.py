"""Who did the caller ask for? The small interface the dialogue needs from a directory matcher.

The extensions app owns real matching (`extensions.matching.DirectoryMatcher`: phonetic keys,
fuzzy spellings, spoken numbers). The receptionist codes against `Matcher` below and adapts that
class with `ExtensionsMatcher` when it is importable; `SimpleDirectoryMatcher` is a plain
word-overlap matcher with the same behaviour on exact words, used by this package's tests and
when the extensions app is not installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from telephony.receptionist.grammar import DIGIT_WORDS, words_of

CONFIDENT_SCORE = 88.0  # same scale (0-100) and rules as extensions.matching
AMBIGUITY_MARGIN = 6.0
AMBIGUITY_FLOOR = 75.0
CANDIDATE_FLOOR = 60.0
FIELD_WEIGHTS = {
    "display_name": 1.0,
    "alias": 1.0,
    "owner": 1.0,
    "first_name": 1.0,
    "last_name": 0.95,
    "department": 0.9,
}
FILLER_WORDS = frozenset({
    "a", "an", "and", "at", "can", "could", "extension", "for", "give", "i", "i'd", "i'm", "id", "im",
    "is", "it", "like", "looking", "me", "my", "need", "of", "please", "put", "reach", "speak", "talk",
    "thank", "thanks", "the", "through", "to", "transfer", "want", "with", "would", "you",
})  # fmt: skip
_DIGITS = {"zero": "0", "oh": "0", **{word: str(n) for n, word in enumerate(DIGIT_WORDS[2:], start=1)}}


@dataclass(frozen=True)
class DirectoryEntry:
    number: str
    display_name: str
    owner: str = ""
    department: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    extension: str
    display_name: str
    department: str = ""
    score: float = 100.0  # 0..100
    owner: str = ""

    @property
    def spoken_name(self) -> str:
        """How the receptionist names the extension: its person if it has one ("Sarah Jones"),
        else its display name ("Sales")."""
        return self.owner or self.display_name


@dataclass(frozen=True)
class DirectoryMatch:
    candidates: tuple[Candidate, ...]  # best first
    ambiguous: bool  # two or more are about as likely: ask which
    confident: bool  # the first one is safe to transfer to without asking

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


class Matcher(Protocol):
    def match(self, phrase: str) -> DirectoryMatch: ...

    def vocabulary(self) -> Sequence[str]:
        """Every name a caller may say (display names, owners, first and last names, aliases,
        departments): what the recogniser's grammar is built from."""
        ...

    def extensions(self) -> Mapping[str, Candidate]:
        """Every extension by its number, for digits keyed in on the phone."""
        ...


def _candidate(entry: Any, score: float = 100.0) -> Candidate:
    return Candidate(
        extension=entry.number,
        display_name=entry.display_name,
        department=entry.department,
        score=score,
        owner=entry.owner,
    )


class SimpleDirectoryMatcher:
    """Scores each extension by how much of one of its names was said, weighted by the kind of
    name, plus how much of what was said it explains (so "Sarah in sales" picks the Sarah in
    Sales). Exact words only: recognised text comes from a grammar of these very names."""

    def __init__(self, entries: Iterable[DirectoryEntry]) -> None:
        self.entries = list(entries)
        self._names: list[tuple[int, str, str, tuple[str, ...]]] = []  # (entry, field, text, words)
        for index, entry in enumerate(self.entries):
            for field, text in _names_of(entry):
                words = tuple(words_of(text))
                if words:
                    self._names.append((index, field, text, words))
        self._known = {word for *_, words in self._names for word in words}

    def vocabulary(self) -> list[str]:
        first_spelling = {}
        for _, _, text, words in self._names:
            first_spelling.setdefault(words, text)
        return list(first_spelling.values())

    def extensions(self) -> dict[str, Candidate]:
        return {entry.number: _candidate(entry) for entry in self.entries}

    def match(self, phrase: str) -> DirectoryMatch:
        said = words_of(phrase)
        scores: dict[int, float] = {}
        for number in _spoken_numbers(said):
            for index, entry in enumerate(self.entries):
                if entry.number == number:
                    scores[index] = 100.0
        heard = [w for w in said if w in self._known or (w not in FILLER_WORDS and w not in _DIGITS)]
        if heard:
            for index in range(len(self.entries)):
                coverage = 0.0
                explained: set[str] = set()
                for entry_index, field, _, words in self._names:
                    if entry_index != index:
                        continue
                    found = [w for w in words if w in heard]
                    if found:
                        explained.update(found)
                        coverage = max(coverage, len(found) / len(words) * FIELD_WEIGHTS[field])
                if coverage:
                    share = sum(1 for w in heard if w in explained) / len(heard)
                    scores[index] = max(scores.get(index, 0.0), 100.0 * (0.8 * coverage + 0.2 * share))
        return _result(self.entries, scores)


def _names_of(entry: DirectoryEntry) -> Iterable[tuple[str, str]]:
    yield "display_name", entry.display_name
    owner = entry.owner.split()
    if owner:
        yield "owner", entry.owner
        if len(owner) > 1:
            yield "first_name", owner[0]
            yield "last_name", owner[-1]
    if entry.department:
        yield "department", entry.department
    for alias in entry.aliases:
        yield "alias", alias


def _spoken_numbers(words: list[str]) -> list[str]:
    """Runs of spoken digits: "extension one oh two" -> ["102"]."""
    numbers: list[str] = []
    run = ""
    for word in [*words, ""]:
        if word in _DIGITS:
            run += _DIGITS[word]
        elif run:
            numbers.append(run)
            run = ""
    return numbers


def _result(entries: Sequence[Any], scores: dict[int, float]) -> DirectoryMatch:
    ranked = sorted(
        (i for i, score in scores.items() if score >= CANDIDATE_FLOOR),
        key=lambda i: (-scores[i], entries[i].number),
    )
    top = scores[ranked[0]] if ranked else 0.0
    close = [i for i in ranked if scores[i] >= top - AMBIGUITY_MARGIN]
    ambiguous = top >= AMBIGUITY_FLOOR and len(close) > 1
    return DirectoryMatch(
        candidates=tuple(_candidate(entries[i], round(scores[i], 1)) for i in ranked[: max(5, len(close))]),
        ambiguous=ambiguous,
        confident=top >= CONFIDENT_SCORE and not ambiguous,
    )


class ExtensionsMatcher:
    """`extensions.matching.DirectoryMatcher` behind the `Matcher` interface."""

    def __init__(self, matcher: Any) -> None:
        self._matcher = matcher
        self._by_number = {entry.number: entry for entry in matcher.entries}

    @classmethod
    def for_entries(cls, entries: Iterable[DirectoryEntry]) -> ExtensionsMatcher:
        from extensions.matching import DirectoryEntry as ExtensionsEntry
        from extensions.matching import DirectoryMatcher

        return cls(
            DirectoryMatcher(
                ExtensionsEntry(e.number, e.display_name, e.owner, e.department, tuple(e.aliases))
                for e in entries
            )
        )

    def vocabulary(self) -> list[str]:
        return list(self._matcher.vocabulary())

    def extensions(self) -> dict[str, Candidate]:
        return {number: _candidate(entry) for number, entry in self._by_number.items()}

    def match(self, phrase: str) -> DirectoryMatch:
        result = self._matcher.match(phrase)
        candidates = []
        for found in result.candidates:
            entry = self._by_number.get(found.extension)
            candidates.append(
                Candidate(
                    extension=found.extension,
                    display_name=found.display_name,
                    department=found.department,
                    score=found.score,
                    owner=entry.owner if entry is not None else "",
                )
            )
        return DirectoryMatch(
            candidates=tuple(candidates), ambiguous=result.ambiguous, confident=result.confident
        )


def spoken_vocabulary(matcher: Matcher) -> list[str]:
    """What the recogniser's grammar is built from: every name, and the extension numbers (so
    "extension …" can only be heard as a number that exists)."""
    return [*matcher.vocabulary(), *(number for number in matcher.extensions() if number.isdigit())]


def directory_matcher(entries: Iterable[DirectoryEntry]) -> Matcher:
    """The extensions app's matcher when it is installed, else the simple one."""
    try:
        return ExtensionsMatcher.for_entries(entries)
    except ImportError:
        return SimpleDirectoryMatcher(entries)
