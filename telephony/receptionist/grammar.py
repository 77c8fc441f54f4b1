"""What the recogniser may hear: JSGF grammars built from the workspace's directory.

A general language model is useless on telephone speech; a grammar that only allows requests
for people who exist is not. The request grammar is

    [please] [<lead-in>] <target> [please] [thanks | thank you]

where a target is any directory phrase (display names, owners, first and last names, aliases,
departments), "operator" / "reception", or "extension" and the spoken digits of an extension
that exists ("one oh two"): with free digits, "extension one two five" was heard as "one two
nine", a number nobody has. A separate yes/no grammar answers confirmation questions.

The grammar also knows which of its targets sound alike (`sound_alikes`: a small edit distance
between their pronunciations), so the dialogue can ask before transferring to one of them.

Every word needs a pronunciation. Most come from the CMU dictionary bundled with pocketsphinx;
names it lacks (Nguyen, Siobhan) get one derived from espeak-ng's letter-to-sound rules,
mapped from its phoneme mnemonics to the acoustic model's ARPAbet. A phrase with a word neither
source can pronounce is left out of the grammar (and reported in `skipped`), rather than let one
odd alias break recognition for the whole directory.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

LEAD_INS = (
    "can i speak to",
    "can i speak with",
    "can i talk to",
    "i'd like",
    "i'd like to speak to",
    "transfer me to",
    "put me through to",
)
POLITE_TAILS = ("please", "thanks", "thank you")
OPERATOR_PHRASES = ("operator", "reception", "receptionist")
DIGIT_WORDS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
YES_PHRASES = ("yes", "yes please", "yeah", "yep", "correct", "that's right", "right", "sure")
NO_PHRASES = ("no", "no thanks", "no thank you", "nope", "wrong", "that's wrong", "not right")
# "No, I said Sarah Jones": a "no" to "Did you want …?" that names who the caller wanted.
CORRECTION_NOES = ("no", "nope")
CORRECTION_LEADS = ("i said", "i want", "i wanted", "i asked for")

_DIGIT_NAMES = dict(zip("0123456789", ("zero",) + DIGIT_WORDS[2:], strict=True))
_WORD = re.compile(r"[a-z0-9']+")


class Expectation(StrEnum):
    """What the dialogue is listening for; each has its own grammar."""

    REQUEST = "request"
    YES_NO = "yes_no"


def words_of(text: str) -> list[str]:
    """Spoken words of a text, as dictionary keys: lower case, no accents, digits spelled out."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.replace("&", " and ").replace("’", "'")
    words: list[str] = []
    for token in _WORD.findall(text):
        token = token.strip("'")
        if not token:
            continue
        if token.isdigit():
            words.extend(_DIGIT_NAMES[d] for d in token)
        elif any(c.isdigit() for c in token):
            words.extend(_DIGIT_NAMES.get(c, c) for c in re.findall(r"\d|[a-z']+", token))
        else:
            words.append(token)
    return words


# --- pronunciations ------------------------------------------------------------------------

Lookup = Callable[[str], list[str]]  # word -> every dictionary pronunciation (may be empty)
Derive = Callable[[Sequence[str]], dict[str, str]]  # words -> derived pronunciations

# espeak-ng phoneme mnemonics (`espeak-ng -x`, English) to the CMU/ARPAbet phones of the
# pocketsphinx en-us model. Longest symbols first when reading; stress and syllable marks skip.
_ESPEAK_TO_ARPABET = {
    "aI@": "AY ER", "aU@": "AW ER", "i@3": "IH R", "A@": "AA R", "A:": "AA", "aI": "AY", "aU": "AW",
    "a#": "AH", "e@": "EH R", "eI": "EY", "i@": "IY AH", "i:": "IY", "I#": "IH", "I2": "IH",
    "O:": "AO", "O@": "AO R", "OI": "OY", "oU": "OW", "o@": "AO R", "U@": "UH R", "u:": "UW",
    "3:": "ER", "@L": "AH L", "@2": "AH", "@5": "AH", "tS": "CH", "dZ": "JH", "t#": "T",
    "a": "AE", "A": "AA", "@": "AH", "3": "ER", "E": "EH", "e": "EH", "i": "IY", "I": "IH",
    "0": "AA", "O": "AO", "o": "OW", "U": "UH", "u": "UW", "V": "AH",
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V", "T": "TH",
    "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "m": "M", "n": "N",
    "N": "NG", "l": "L", "r": "R", "w": "W", "j": "Y", "x": "K", "C": "HH",
}  # fmt: skip
_ESPEAK_SYMBOLS = sorted(_ESPEAK_TO_ARPABET, key=len, reverse=True)


def arpabet_from_espeak(mnemonics: str) -> str:
    """`n'u:jEn` -> `N UW Y EH N`. Unknown marks (stress, syllable breaks) are skipped."""
    phones: list[str] = []
    i = 0
    while i < len(mnemonics):
        for symbol in _ESPEAK_SYMBOLS:
            if mnemonics.startswith(symbol, i):
                phones.append(_ESPEAK_TO_ARPABET[symbol])
                i += len(symbol)
                break
        else:
            i += 1
    # "e@" (as in "hair") carries its R, and espeak may write the r again ("s'e@r3"): say it once.
    merged = " ".join(phones).split()
    return " ".join(p for n, p in enumerate(merged) if n == 0 or p != merged[n - 1])


def espeak_derive(
    words: Sequence[str], *, voice: str = "en-us", executable: str = "espeak-ng"
) -> dict[str, str]:
    """Pronunciations for words the dictionary lacks, from espeak-ng's spelling rules.

    Blocking (runs one espeak-ng process for all the words): call it from a worker thread."""
    if not words:
        return {}
    text = "".join(f"{word}.\n" for word in words)  # one clause, so one output line, per word
    try:
        result = subprocess.run(
            [executable, "-q", "-x", "-v", voice, "--stdin"],
            input=text.encode(),
            capture_output=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = [line.strip() for line in result.stdout.decode(errors="replace").splitlines() if line.strip()]
    if len(lines) != len(words):
        return {}
    derived = {}
    for word, line in zip(words, lines, strict=True):
        phones = arpabet_from_espeak(line)
        if phones:
            derived[word] = phones
    return derived


# --- the grammars --------------------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    """The compiled grammars and the lexicon they need, for one directory."""

    jsgf: dict[Expectation, str]
    lexicon: dict[str, tuple[str, ...]]  # word -> pronunciations, the first is the dictionary's
    phrases: tuple[str, ...]  # directory phrases the request grammar accepts (as words)
    skipped: tuple[str, ...] = ()  # directory phrases left out: a word nobody could pronounce
    derived: dict[str, str] = field(default_factory=dict)  # word -> pronunciation from espeak-ng
    # Per grammar, the words that carry the meaning (names, digits, yes/no), not the lead-ins.
    meaningful_words: dict[Expectation, frozenset[str]] = field(default_factory=dict)
    targets: tuple[str, ...] = ()  # what the request grammar names: directory phrases, operator
    numbers: tuple[str, ...] = ()  # the extensions "extension <digits>" may name; () = any digits
    sound_alikes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target -> similar ones
    _patterns: dict[Expectation, re.Pattern[str]] = field(default_factory=dict, repr=False)

    def accepts(self, text: str, expect: Expectation = Expectation.REQUEST) -> bool:
        """Whether `text` is a whole sentence of the grammar. A recogniser that ran out of
        audio mid-sentence returns a prefix ("can i speak to"); that is not an answer."""
        return bool(self._patterns[expect].fullmatch("".join(" " + word for word in text.split())))

    def request_jsgf(self, exclude: Iterable[str] = (), *, lead_ins: bool = True) -> str:
        """The request grammar without some targets: a caller who said "no" to Ken Porter is
        not heard as asking for him again (the same voice is misheard the same way twice).
        `lead_ins=False`: names only, for a second look at an utterance (see asr._Decoders.end)."""
        exclude = list(exclude)
        excluded = {" ".join(words_of(phrase)) for phrase in exclude if not phrase.strip().isdigit()}
        # The second look is for a name the lead-ins hid, not for "operator" (which would send
        # the caller to the fallback on a guess).
        kept = [t for t in self.targets if t not in excluded and (lead_ins or t not in OPERATOR_PHRASES)]
        turned_down = {phrase.strip() for phrase in exclude if phrase.strip().isdigit()}
        numbers = [n for n in self.numbers if n not in turned_down]
        rules = _request_rules(kept or list(self.targets), numbers or self.numbers, lead_ins=lead_ins)
        return rules.jsgf("request")

    def targets_in(self, text: str) -> list[str]:
        """The targets a recognised sentence names (the longest where one contains another),
        "extension" and its digits included (read with "zero" for "oh")."""
        padded = f" {' '.join('zero' if w == 'oh' else w for w in text.split())} "
        found = [t for t in (*self.targets, *_number_phrases(self.numbers)) if f" {t} " in padded]
        return [t for t in found if not any(t != o and f" {t} " in f" {o} " for o in found)]

    def sound_alikes_of(self, text: str) -> tuple[str, ...]:
        """Other targets that sound like what `text` names: what the recogniser may have misheard."""
        similar = {alike for target in self.targets_in(text) for alike in self.sound_alikes.get(target, ())}
        return tuple(sorted(similar))


def _request_rules(targets: Sequence[str], numbers: Sequence[str] = (), *, lead_ins: bool = True) -> _Rules:
    request = _Rules()
    request.rule("tail", POLITE_TAILS)
    _target_rule(request, targets, numbers)
    if lead_ins:
        request.rule("lead", LEAD_INS)
        request.public("request", "[please] [<lead>] <target> [please] [<tail>]")
    else:
        request.public("request", "[please] <target> [please] [<tail>]")
    return request


def _yes_no_rules(targets: Sequence[str], numbers: Sequence[str] = ()) -> _Rules:
    """yes, no, or a no with the name the caller wanted instead ("no, I said Sarah Jones")."""
    yes_no = _Rules()
    yes_no.rule("yes", YES_PHRASES)
    yes_no.rule("no", NO_PHRASES)
    yes_no.rule("correction", CORRECTION_NOES)
    yes_no.rule("said", CORRECTION_LEADS)
    _target_rule(yes_no, targets, numbers)
    yes_no.public("answer", "<yes> | <no> | <correction> [<said>] <target> [please]")
    return yes_no


def _target_rule(rules: _Rules, targets: Sequence[str], numbers: Sequence[str]) -> None:
    if numbers:
        rules.rule("number", [spoken for number in numbers for spoken in spoken_digits(number)])
        extension = "extension <number>"
    else:
        rules.rule("digit", DIGIT_WORDS)
        extension = "extension <digit>+"
    rules.rule("target", targets, extra=[extension])


def correction_of(text: str) -> str | None:
    """The request inside an answer like "no, I said Sarah Jones" ("sarah jones"); None when
    the answer names nobody."""
    words = words_of(text)
    if not words or words[0] not in CORRECTION_NOES:
        return None
    rest = words[1:]
    for lead in sorted(CORRECTION_LEADS, key=len, reverse=True):
        if rest[: len(lead.split())] == lead.split():
            rest = rest[len(lead.split()) :]
            break
    if not rest or " ".join(rest) in POLITE_TAILS or " ".join(words) in NO_PHRASES:
        return None
    return " ".join(rest)


def _number_phrases(numbers: Iterable[str]) -> list[str]:
    return [f"extension {spoken_digits(n)[0]}" for n in numbers]


def spoken_digits(number: str) -> list[str]:
    """Every way to say an extension's digits: 0 is "zero" or "oh" ("one oh four")."""
    spoken = [""]
    for digit in number:
        names = ("zero", "oh") if digit == "0" else (_DIGIT_NAMES[digit],)
        spoken = [f"{head} {name}".strip() for head in spoken for name in names]
        if len(spoken) > 16:  # a long number full of zeros: the usual readings are enough
            spoken = spoken[:16]
    return spoken


# Two targets sound alike when the edit distance between their phones, with a vowel for a vowel
# or a consonant for its voiced/voiceless twin costing half, is at most this share of the longer
# one ("jones" / "johns" 0.12, "tom hall" / "tim hill" 0.17, "paul" / "ball" 0.17; "sarah jones"
# / "john smith" 0.8).
SOUND_ALIKE_DISTANCE = 0.3
_VOWELS = frozenset(
    ["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"]
)
# Voicing is what a telephone line blurs most among consonants (the burst and frication lie high).
_TWINS = {
    frozenset(pair)
    for pair in (
        ("P", "B"),
        ("T", "D"),
        ("K", "G"),
        ("F", "V"),
        ("S", "Z"),
        ("TH", "DH"),
        ("CH", "JH"),
        ("SH", "ZH"),
    )
}


def _swap_cost(x: str, y: str) -> float:
    if x == y:
        return 0.0
    if (x in _VOWELS and y in _VOWELS) or frozenset((x, y)) in _TWINS:
        return 0.5
    return 1.0


def phone_distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Edit distance between two phone sequences; near misses (see `_swap_cost`) cost 0.5."""
    previous = [float(j) for j in range(len(b) + 1)]
    for i, x in enumerate(a, start=1):
        current = [float(i)]
        for j, y in enumerate(b, start=1):
            swap = _swap_cost(x, y)
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + swap))
        previous = current
    return previous[-1]


def _sound_alikes(
    targets: Sequence[str], lexicon: dict[str, tuple[str, ...]], limit: float
) -> dict[str, tuple[str, ...]]:
    phones = {
        t: tuple(p.rstrip("012") for w in t.split() for p in lexicon[w][0].split())
        for t in targets
        if all(w in lexicon for w in t.split())
    }
    alike: dict[str, list[str]] = {t: [] for t in phones}
    items = list(phones.items())
    for n, (t, p) in enumerate(items):
        for u, q in items[n + 1 :]:
            if abs(len(p) - len(q)) > limit * max(len(p), len(q)):
                continue  # cheap bound: the length difference alone is too large
            if phone_distance(p, q) <= limit * max(len(p), len(q)):
                alike[t].append(u)
                alike[u].append(t)
    return {t: tuple(us) for t, us in alike.items() if us}


def build_grammar(phrases: Iterable[str], *, lookup: Lookup, derive: Derive | None = None) -> Grammar:
    """Grammars for a directory's phrases (`matching.spoken_vocabulary()`: the matcher's names and
    the extension numbers; without numbers, "extension" takes any digits)."""
    directory: list[tuple[str, ...]] = []
    numbers: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for phrase in phrases:
        if phrase.strip().isdigit():  # an extension number: said after "extension"
            numbers.append(phrase.strip())
            continue
        words = tuple(words_of(phrase))
        if words and words not in seen:
            seen.add(words)
            directory.append(words)

    fixed = [
        *(
            tuple(p.split())
            for p in LEAD_INS + POLITE_TAILS + OPERATOR_PHRASES + YES_PHRASES + NO_PHRASES + CORRECTION_LEADS
        ),
        ("extension", *DIGIT_WORDS),
    ]
    lexicon: dict[str, tuple[str, ...]] = {}
    missing: list[str] = []
    for words in fixed + directory:
        for word in words:
            if word in lexicon or word in missing:
                continue
            pronunciations = lookup(word)
            if pronunciations:
                lexicon[word] = tuple(pronunciations)
            else:
                missing.append(word)
    derived = derive(missing) if derive and missing else {}
    for word, phones in derived.items():
        lexicon[word] = (phones,)

    kept = [words for words in directory if all(word in lexicon for word in words)]
    skipped = tuple(" ".join(words) for words in directory if words not in kept)
    fixed_missing = [w for words in fixed for w in words if w not in lexicon]
    if fixed_missing:
        raise ValueError(f"the acoustic model's dictionary lacks {sorted(set(fixed_missing))}")

    targets = [" ".join(words) for words in kept] + list(OPERATOR_PHRASES)
    numbers = sorted(set(numbers))
    request = _request_rules(targets, numbers)

    yes_no = _yes_no_rules(targets, numbers)

    framing = {w for phrase in LEAD_INS + POLITE_TAILS for w in phrase.split()}
    naming = {w for target in targets for w in target.split()} | {"extension", *DIGIT_WORDS}
    answers = {w for phrase in YES_PHRASES + NO_PHRASES for w in phrase.split()}
    return Grammar(
        jsgf={Expectation.REQUEST: request.jsgf("request"), Expectation.YES_NO: yes_no.jsgf("yes_no")},
        meaningful_words={
            Expectation.REQUEST: frozenset(naming - (framing - naming)),
            Expectation.YES_NO: frozenset((answers | naming) - {"please", "thanks", "thank", "you"}),
        },
        lexicon=lexicon,
        phrases=tuple(" ".join(words) for words in kept),
        skipped=skipped,
        derived={word: derived[word] for word in derived if word in lexicon},
        targets=tuple(targets),
        numbers=tuple(numbers),
        # Numbers too: "one two five" and "one two nine" differ in the sounds G.711 drops.
        sound_alikes=_sound_alikes([*targets, *_number_phrases(numbers)], lexicon, SOUND_ALIKE_DISTANCE),
        _patterns={Expectation.REQUEST: request.pattern(), Expectation.YES_NO: yes_no.pattern()},
    )


class _Rules:
    """JSGF rules and the equivalent regular expression, written side by side so the two cannot
    disagree. Only the JSGF subset used here: alternatives, [optional], <rule>, <rule>+."""

    def __init__(self) -> None:
        self._jsgf: list[str] = []
        self._regex: dict[str, str] = {}
        self._public = ""

    def rule(self, name: str, phrases: Iterable[str], *, extra: Iterable[str] = ()) -> None:
        alternatives = list(dict.fromkeys(phrases)) + list(extra)
        self._jsgf.append(f"<{name}> = {' | '.join(alternatives)};")
        self._regex[name] = "(?:" + "|".join(self._to_regex(a) for a in alternatives) + ")"

    def public(self, name: str, expansion: str) -> None:
        self._jsgf.append(f"public <{name}> = {expansion};")
        self._public = self._to_regex(expansion)

    def jsgf(self, grammar_name: str) -> str:
        return "#JSGF V1.0;\n" + f"grammar {grammar_name};\n" + "\n".join(self._jsgf) + "\n"

    def pattern(self) -> re.Pattern[str]:
        return re.compile(self._public)

    def _to_regex(self, expansion: str) -> str:
        # Tokens: [ ] | <name> <name>+ and words. Each item carries its own leading space, so
        # the sentence is matched against " " + text.
        out: list[str] = []
        for token in re.findall(r"\[|\]|\||<\w+>\+?|[^\s\[\]|<>]+", expansion):
            if token == "[":
                out.append("(?:")
            elif token == "]":
                out.append(")?")
            elif token == "|":
                out.append("|")
            elif token.startswith("<"):
                name = token.strip("<>+")
                item = f"(?:{self._regex[name]})"
                out.append(f"(?:{item})+" if token.endswith("+") else item)
            else:
                out.append(" " + re.escape(token))
        return "".join(out)
