import pytest

from telephony.receptionist.asr import default_model
from telephony.receptionist.grammar import (
    Expectation,
    arpabet_from_espeak,
    build_grammar,
    espeak_derive,
    words_of,
)

PRONUNCIATIONS = {
    "sarah": ["S EH R AH"], "jones": ["JH OW N Z"], "sales": ["S EY L Z"], "team": ["T IY M"],
    "tom": ["T AA M"],
}  # fmt: skip


def lookup(word: str) -> list[str]:
    """The real dictionary for the fixed phrases, a tiny one for the directory's words."""
    if word in PRONUNCIATIONS:
        return PRONUNCIATIONS[word]
    if word in ("nguyen", "zyxwv"):
        return []
    return default_model().pronunciations(word)


def test_words_are_dictionary_keys():
    assert words_of("Ms. O’Brien-Smith & Co") == ["ms", "o'brien", "smith", "and", "co"]
    assert words_of("Zoë Ström") == ["zoe", "strom"]
    assert words_of("Floor 2, room 101") == ["floor", "two", "room", "one", "zero", "one"]


def test_request_grammar_has_lead_ins_targets_digits_and_polite_endings():
    grammar = build_grammar(["Sarah Jones", "Sarah", "sales team"], lookup=lookup)
    jsgf = grammar.jsgf[Expectation.REQUEST]
    assert "<target> = sarah jones | sarah | sales team | operator | reception" in jsgf
    assert "extension <digit>+" in jsgf
    assert "public <request> = [please] [<lead>] <target> [please] [<tail>];" in jsgf
    for sentence in (
        "sarah jones please",
        "can i speak to sarah",
        "transfer me to sales team thank you",
        "i'd like sarah jones",
        "extension one oh two",
        "operator",
    ):
        assert grammar.accepts(sentence), sentence
    assert grammar.lexicon["sarah"] == ("S EH R AH",)
    assert len(grammar.lexicon["to"]) >= 2  # alternative pronunciations are kept


@pytest.mark.parametrize("partial", ["can i speak to", "please", "extension", "i'd like", "", "sarah sarah"])
def test_a_sentence_the_audio_ran_out_in_is_not_accepted(partial):
    grammar = build_grammar(["Sarah Jones", "Sarah"], lookup=lookup)
    assert not grammar.accepts(partial)


def test_yes_no_grammar_is_separate():
    grammar = build_grammar(["Sarah"], lookup=lookup)
    assert grammar.accepts("yes please", Expectation.YES_NO)
    assert grammar.accepts("no thank you", Expectation.YES_NO)
    assert not grammar.accepts("sarah", Expectation.YES_NO)
    assert not grammar.accepts("yes", Expectation.REQUEST)
    assert grammar.meaningful_words[Expectation.YES_NO] >= {"yes", "no", "yeah"}
    assert "can" not in grammar.meaningful_words[Expectation.REQUEST]
    assert "sarah" in grammar.meaningful_words[Expectation.REQUEST]


def test_words_without_a_pronunciation_drop_their_phrase_unless_one_can_be_derived():
    skipped = build_grammar(["Tom Nguyen", "Tom", "Zyxwv"], lookup=lookup)
    assert skipped.phrases == ("tom",)
    assert skipped.skipped == ("tom nguyen", "zyxwv")
    assert "nguyen" not in skipped.jsgf[Expectation.REQUEST]

    derived = build_grammar(["Tom Nguyen", "Tom"], lookup=lookup, derive=espeak_derive)
    assert derived.phrases == ("tom nguyen", "tom")
    assert derived.skipped == ()
    assert derived.derived["nguyen"].startswith("N ")
    assert derived.lexicon["nguyen"] == (derived.derived["nguyen"],)


def test_espeak_phonemes_map_to_the_models_phones():
    assert arpabet_from_espeak("n'u:jEn") == "N UW Y EH N"
    assert arpabet_from_espeak("s'e@r3") == "S EH R ER"
    assert arpabet_from_espeak("tS'3:tS") == "CH ER CH"
    assert arpabet_from_espeak("dZ'VdZ") == "JH AH JH"
    derived = espeak_derive(["siobhan", "aoife"])
    assert derived["siobhan"].split()[0] == "SH"
    assert set(derived) == {"siobhan", "aoife"}


def test_the_acoustic_models_dictionary_serves_the_grammar():
    grammar = default_model().grammar(["Sarah Jones", "sales team"])
    assert grammar.lexicon["jones"] == ("JH OW N Z",)
    assert default_model().grammar(["Sarah Jones", "sales team"]) is grammar  # built once
