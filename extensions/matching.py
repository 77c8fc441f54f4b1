"""Who does the caller mean? Ranks a trunk's extensions against what the caller said.

`DirectoryMatcher` is built once per directory (the call engine keeps it in memory and rebuilds
it when the configuration version changes) and answers `match(phrase)` on every caller turn, so
lookups go through dictionaries: exact words, then a phonetic key (metaphone), then a fuzzy
shortlist (Jaro-Winkler via rapidfuzz, confirmed by jellyfish's match rating) for typos and
mishearings. A phrase is scored per extension from two things:

* how much of one of its names was heard ("sarah jones" fully, "sarah" half of the owner but all
  of the first name), weighted by the kind of name (a department says less than a name), and
* how much of what the caller said that extension explains, so "Sarah in sales" picks the Sarah
  whose department is Sales.

Spoken digits ("one oh two", "double five", "one hundred two") match extension numbers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import jellyfish
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

# A score at or above this, with no close second, is safe to transfer without asking.
CONFIDENT_SCORE = 88.0
# Candidates this close to the best one make the result ambiguous: the agent should ask.
AMBIGUITY_MARGIN = 6.0
AMBIGUITY_FLOOR = 75.0
CANDIDATE_FLOOR = 60.0
# Name coverage decides most of the score; the share of the phrase explained breaks ties.
NAME_SHARE, PHRASE_SHARE = 0.8, 0.2

FIELD_WEIGHTS = {
    "extension": 1.0,
    "display_name": 1.0,
    "alias": 1.0,
    "owner": 1.0,
    "first_name": 1.0,
    "last_name": 0.95,
    "department": 0.9,
}
FIELD_LABELS = {
    "extension": "extension number",
    "display_name": "display name",
    "alias": "alias",
    "owner": "owner",
    "first_name": "first name",
    "last_name": "last name",
    "department": "department",
}

# Words around a request ("can I speak to …, please"). Dropped unless the directory uses them
# (a department called "Help" keeps "help").
FILLER_WORDS = frozenset({
    "a", "about", "am", "an", "and", "any", "anybody", "anyone", "are", "at", "be", "call", "calling",
    "can", "connect", "connected", "could", "department", "dept", "dial", "do", "er", "erm", "ext",
    "extension", "for", "from", "get", "give", "go", "hello", "hey", "hi", "i", "id", "ill", "im", "in",
    "is", "it", "just", "like", "looking", "me", "miss", "mr", "mrs", "ms", "my", "need", "number", "of",
    "office", "oh", "ok", "okay", "on", "one", "please", "pls", "put", "reach", "regarding", "ring", "sir",
    "somebody", "someone", "speak", "speaking", "talk", "thank", "thanks", "that", "the", "there", "this",
    "through", "to", "transfer", "transferred", "uh", "um", "wanna", "want", "with", "would", "yeah",
    "yes", "you",
})  # fmt: skip

DIGIT_WORDS = {
    "zero": 0, "oh": 0, "o": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
TEEN_WORDS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS_WORDS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_REPEAT_WORDS = {"double": 2, "triple": 3}

_TOKEN = re.compile(r"[^\W\d_]+|\d+")
_TOKEN_CACHE_SIZE = 4096
_NO_HIT = (0.0, "")


def tokens_of(text: str) -> list[str]:
    """Lower-case words without accents or punctuation; letters and digits split ("ext101")."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return _TOKEN.findall(text.replace("'", "").replace("’", ""))


class DirectoryEntry(NamedTuple):
    """One extension as the matcher sees it (a tuple of strings: invisible to the garbage collector)."""

    number: str
    display_name: str
    owner: str = ""
    department: str = ""
    aliases: tuple[str, ...] = ()
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Matched:
    field: str
    value: str
    heard: str

    @property
    def label(self) -> str:
        return FIELD_LABELS.get(self.field, self.field)


@dataclass(frozen=True, slots=True)
class Candidate:
    extension: str
    display_name: str
    score: float
    matched: tuple[Matched, ...]
    extension_id: int | None = None
    department: str = ""


@dataclass(frozen=True, slots=True)
class MatchResult:
    phrase: str
    candidates: tuple[Candidate, ...]
    ambiguous: bool
    confident: bool

    @property
    def best(self) -> Candidate | None:
        """The extension to transfer to without asking, if there is one."""
        return self.candidates[0] if self.confident else None


def _read_number(tokens: list[str], i: int) -> tuple[int, str]:
    """Reads spoken or written digits from tokens[i:]; returns (next index, digits)."""
    digits: list[str] = []
    n = len(tokens)

    def small(j: int) -> tuple[int, int]:  # "twenty three", "twelve", "seven" after a hundred
        if j < n and tokens[j] in TEEN_WORDS:
            return j + 1, TEEN_WORDS[tokens[j]]
        if j < n and tokens[j] in TENS_WORDS:
            value = TENS_WORDS[tokens[j]]
            if j + 1 < n and DIGIT_WORDS.get(tokens[j + 1], 0) > 0:
                return j + 2, value + DIGIT_WORDS[tokens[j + 1]]
            return j + 1, value
        if j < n and tokens[j] in DIGIT_WORDS:
            return j + 1, DIGIT_WORDS[tokens[j]]
        return j, 0

    while i < n:
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < n else ""
        if token.isdigit():
            digits.append(token)
            i += 1
        elif token in _REPEAT_WORDS and following in DIGIT_WORDS:
            digits.append(str(DIGIT_WORDS[following]) * _REPEAT_WORDS[token])
            i += 2
        elif token in DIGIT_WORDS and following in ("hundred", "thousand"):
            value = DIGIT_WORDS[token] * (100 if following == "hundred" else 1000)
            i += 2
            if (
                following == "thousand"
                and i + 1 < n
                and tokens[i] in DIGIT_WORDS
                and tokens[i + 1] == "hundred"
            ):
                value += DIGIT_WORDS[tokens[i]] * 100
                i += 2
            if i < n and tokens[i] == "and":
                i += 1
            i, rest = small(i)
            digits.append(str(value + rest))
        elif token in DIGIT_WORDS:
            digits.append(str(DIGIT_WORDS[token]))
            i += 1
        elif token in TEEN_WORDS or token in TENS_WORDS:
            i, value = small(i)
            digits.append(str(value))
        else:
            break
    return i, "".join(digits)


def _starts_number(tokens: list[str], i: int) -> bool:
    token = tokens[i]
    if token.isdigit() or token in DIGIT_WORDS or token in TEEN_WORDS or token in TENS_WORDS:
        return True
    return token in _REPEAT_WORDS and i + 1 < len(tokens) and tokens[i + 1] in DIGIT_WORDS


def split_numbers(tokens: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """([(digits, words heard)], the other words): "extension one oh two" -> [("102", "one oh two")]."""
    numbers: list[tuple[str, str]] = []
    words: list[str] = []
    i = 0
    while i < len(tokens):
        if _starts_number(tokens, i):
            end, digits = _read_number(tokens, i)
            if end > i and digits:
                numbers.append((digits, " ".join(tokens[i:end])))
                i = end
                continue
        words.append(tokens[i])
        i += 1
    return numbers, words


class DirectoryMatcher:
    def __init__(self, entries: Iterable[DirectoryEntry]) -> None:
        self.entries: list[DirectoryEntry] = list(entries)
        # One slot per name (display name, owner, first/last name, department, alias) in parallel
        # lists of plain values: tens of thousands of small objects would make every garbage
        # collection walk them, and a full collection in the middle of a match costs ~40 ms.
        self._name_field: list[str] = []
        self._name_text: list[str] = []
        self._name_tokens: list[tuple[str, ...]] = []
        self._name_entry: list[int] = []
        self._name_weight: list[float] = []
        self._name_scale: list[float] = []
        self._entry_names: list[list[int]] = []
        self._postings: dict[str, list[tuple[int, int]]] = {}  # token -> [(name index, position)]
        self._by_number: dict[str, list[int]] = {}
        self._by_sound: dict[str, list[str]] = {}
        self._token_cache: dict[str, tuple[tuple[str, float], ...]] = {}
        for index, entry in enumerate(self.entries):
            self._entry_names.append([])
            self._by_number.setdefault(entry.number.casefold(), []).append(index)
            for field, text in self._names_of(entry):
                self._add_name(index, field, text)
        # Frozen into tuples of plain values, which the garbage collector stops tracking.
        self._postings = {token: tuple(postings) for token, postings in self._postings.items()}  # type: ignore[misc]
        self._by_number = {number: tuple(entries) for number, entries in self._by_number.items()}  # type: ignore[misc]
        self._entry_names = [tuple(names) for names in self._entry_names]  # type: ignore[misc]
        self._vocab: list[str] = list(self._postings)
        for token in self._vocab:
            if len(token) >= 2 and not token.isdigit():
                self._by_sound.setdefault(jellyfish.metaphone(token), []).append(token)

    @staticmethod
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

    def _add_name(self, entry: int, field: str, text: str) -> None:
        tokens = tuple(tokens_of(text))
        if not tokens:
            return
        name_index = len(self._name_text)
        self._name_field.append(field)
        self._name_text.append(text)
        self._name_tokens.append(tokens)
        self._name_entry.append(entry)
        self._name_weight.append(FIELD_WEIGHTS[field])
        self._name_scale.append(FIELD_WEIGHTS[field] / len(tokens))
        self._entry_names[entry].append(name_index)
        for position, token in enumerate(tokens):
            self._postings.setdefault(token, []).append((name_index, position))

    # --- what the recogniser should listen for ------------------------------------------------
    def vocabulary(self) -> list[str]:
        """Names, first and last names, aliases and departments, each once, in directory order."""
        seen: set[str] = set()
        words: list[str] = []
        for text, tokens in zip(self._name_text, self._name_tokens, strict=True):
            key = " ".join(tokens)
            if key not in seen:
                seen.add(key)
                words.append(text)
        return words

    # --- matching -----------------------------------------------------------------------------
    def similar_tokens(self, heard: str) -> tuple[tuple[str, float], ...]:
        """Directory words that `heard` may be, with a similarity in 0..1 (1 = the same word)."""
        cached = self._token_cache.get(heard)
        if cached is not None:
            return cached
        found: dict[str, float] = {}
        if heard in self._postings:
            found[heard] = 1.0
        if len(heard) >= 2 and not heard.isdigit():
            for token in self._by_sound.get(jellyfish.metaphone(heard), ()):
                if token != heard:
                    found[token] = max(found.get(token, 0.0), _sounds_like(heard, token))
            if len(heard) >= 3:
                shortlist = process.extract(
                    heard, self._vocab, scorer=JaroWinkler.normalized_similarity, score_cutoff=0.78, limit=8
                )
                for token, similarity, _ in shortlist:
                    score = _fuzzy_score(heard, token, similarity)
                    if score > found.get(token, 0.0):
                        found[token] = score
        result = tuple(found.items())
        if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
            self._token_cache.clear()
        self._token_cache[heard] = result
        return result

    def match(self, phrase: str, *, limit: int = 5) -> MatchResult:
        numbers, words = split_numbers(tokens_of(phrase))
        heard = [w for w in words if w in self._postings or w not in FILLER_WORDS]
        scores: dict[int, float] = {}
        said_numbers: dict[int, str] = {}
        for digits, spoken in numbers:
            for entry in self._by_number.get(digits, ()):
                scores[entry] = 100.0
                said_numbers[entry] = spoken

        # This loop runs for every posting of every word heard: plain dicts and lists only.
        name_hits: dict[int, dict[int, tuple[float, str]]] = {}  # name -> position -> (sim, word)
        word_best: dict[tuple[int, int], float] = {}  # (entry, heard word) -> weighted similarity
        name_entry, name_weight = self._name_entry, self._name_weight
        useful = 0
        for word in heard:
            similar = self.similar_tokens(word)
            if not similar:
                continue  # a word the directory knows nothing like ("uh", "accounting")
            for token, similarity in similar:
                for name_index, position in self._postings[token]:
                    hits = name_hits.get(name_index)
                    if hits is None:
                        name_hits[name_index] = {position: (similarity, word)}
                    elif similarity > hits.get(position, _NO_HIT)[0]:
                        hits[position] = (similarity, word)
                    key = (name_entry[name_index], useful)
                    weighted = similarity * name_weight[name_index]
                    if weighted > word_best.get(key, 0.0):
                        word_best[key] = weighted
            useful += 1

        coverage: dict[int, float] = {}  # entry -> best weighted share of one of its names heard
        for name_index, hits in name_hits.items():
            covered = sum(similarity for similarity, _ in hits.values()) * self._name_scale[name_index]
            entry = name_entry[name_index]
            if covered > coverage.get(entry, 0.0):
                coverage[entry] = covered
        explained: dict[int, float] = {}
        for (entry, _), weighted in word_best.items():
            explained[entry] = explained.get(entry, 0.0) + weighted
        for entry, best_name in coverage.items():
            score = 100.0 * (NAME_SHARE * best_name + PHRASE_SHARE * explained[entry] / useful)
            if score > scores.get(entry, 0.0):
                scores[entry] = score
        return self._result(phrase, scores, name_hits, said_numbers, limit)

    def _described(
        self, entry: int, name_hits: dict[int, dict[int, tuple[float, str]]], said_number: str | None
    ) -> tuple[Matched, ...]:
        """What was heard for one candidate: its number, then its best-covered names."""
        found: list[tuple[float, Matched]] = []
        if said_number:
            found.append((2.0, Matched("extension", self.entries[entry].number, said_number)))
        for name_index in self._entry_names[entry]:
            hits = name_hits.get(name_index)
            if not hits:
                continue
            covered = sum(similarity for similarity, _ in hits.values()) * self._name_scale[name_index]
            if covered >= 0.5:
                said = " ".join(word for _, (_, word) in sorted(hits.items()))
                field, text = self._name_field[name_index], self._name_text[name_index]
                found.append(
                    (covered + 0.01 * len(self._name_tokens[name_index]), Matched(field, text, said))
                )
        found.sort(key=lambda item: -item[0])
        return tuple(matched for _, matched in found[:3])

    def _result(
        self,
        phrase: str,
        scores: dict[int, float],
        name_hits: dict[int, dict[int, tuple[float, str]]],
        said_numbers: dict[int, str],
        limit: int,
    ) -> MatchResult:
        ranked = sorted(
            (entry for entry, score in scores.items() if score >= CANDIDATE_FLOOR),
            key=lambda entry: (-scores[entry], self.entries[entry].number),
        )
        top = scores[ranked[0]] if ranked else 0.0
        close = [entry for entry in ranked if scores[entry] >= top - AMBIGUITY_MARGIN]
        ambiguous = top >= AMBIGUITY_FLOOR and len(close) > 1
        candidates = tuple(
            Candidate(
                extension=self.entries[entry].number,
                display_name=self.entries[entry].display_name,
                score=round(scores[entry], 1),
                matched=self._described(entry, name_hits, said_numbers.get(entry)),
                extension_id=self.entries[entry].id,
                department=self.entries[entry].department,
            )
            for entry in ranked[: max(limit, len(close))]
        )
        return MatchResult(
            phrase=phrase,
            candidates=candidates,
            ambiguous=ambiguous,
            confident=top >= CONFIDENT_SCORE and not ambiguous,
        )


def _sounds_like(heard: str, token: str) -> float:
    # Sound-alikes ("sara"/"sarah", "cells"/"sales") are likely, but less so the more the
    # spellings differ ("tim"/"tom" share a metaphone key too).
    return 0.55 + 0.4 * JaroWinkler.normalized_similarity(heard, token)


def _fuzzy_score(heard: str, token: str, similarity: float) -> float:
    if token == heard:
        return 1.0
    if min(len(heard), len(token)) >= 4:
        edits = DamerauLevenshtein.distance(heard, token, score_cutoff=2)
        if edits == 1:
            return 0.92  # a typo or a dropped letter ("jhon", "suport", "jonse")
        if edits == 2 and min(len(heard), len(token)) >= 7:
            return 0.88
    # Match rating alone pairs "john" with "jones"; only trust it for close spellings.
    close_lengths = abs(len(heard) - len(token)) <= 1
    if similarity >= 0.9 and close_lengths and jellyfish.match_rating_comparison(heard, token):
        return _sounds_like(heard, token)
    return 0.0
