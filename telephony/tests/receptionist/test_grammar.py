import pytest

from telephony.receptionist.asr import default_model
from telephony.receptionist.grammar import (
    Expectation,
    arpabet_from_espeak,
    build_grammar,
    correction_of,
    espeak_derive,
    phone_distance,
    spoken_digits,
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


def test_a_no_may_name_who_the_caller_wanted_instead():
    grammar = build_grammar(["Sarah Jones", "Sarah", "101"], lookup=lookup)
    for answer in ("no sarah jones", "no i said sarah please", "nope extension one oh one"):
        assert grammar.accepts(answer, Expectation.YES_NO)
    assert not grammar.accepts("yes sarah", Expectation.YES_NO)
    assert not grammar.accepts("no thanks sarah", Expectation.YES_NO)
    assert "sarah" in grammar.meaningful_words[Expectation.YES_NO]
    assert correction_of("no i said sarah jones") == "sarah jones"
    assert correction_of("nope extension one oh one") == "extension one oh one"
    assert [correction_of(a) for a in ("no", "no thanks", "no thank you", "yes", "nope")] == [None] * 5


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


def test_extension_digits_are_only_the_numbers_that_exist():
    grammar = build_grammar(["Sarah Jones", "Sarah", "104", "125"], lookup=lookup)
    assert grammar.numbers == ("104", "125")
    assert "sarah" in grammar.targets and "one zero four" not in grammar.targets
    for sentence in ("extension one oh four", "extension one zero four please", "extension one two five"):
        assert grammar.accepts(sentence), sentence
    for impossible in ("extension one two nine", "extension one two", "extension one two five five"):
        assert not grammar.accepts(impossible), impossible
    assert "extension <digit>+" not in grammar.request_jsgf(exclude=["sarah"])  # kept when excluding


def test_spoken_digits_read_zero_both_ways():
    assert spoken_digits("125") == ["one two five"]
    assert spoken_digits("100") == ["one zero zero", "one zero oh", "one oh zero", "one oh oh"]


def test_targets_that_sound_alike_are_known():
    grammar = build_grammar(
        ["Sarah Jones", "Jones", "Emma Johns", "Johns", "Tom Hall", "Tim Hill", "John Smith"],
        lookup=lambda w: default_model().pronunciations(w),
    )
    assert "johns" in grammar.sound_alikes["jones"]
    assert "tim hill" in grammar.sound_alikes["tom hall"]
    assert "john smith" not in grammar.sound_alikes.get("sarah jones", ())
    assert grammar.sound_alikes_of("can i speak to jones please") == ("johns",)
    # The longest target a sentence names decides: "sarah jones", not its "jones".
    assert grammar.sound_alikes_of("sarah jones please") == grammar.sound_alikes.get("sarah jones", ())
    assert grammar.sound_alikes_of("john smith") == ()


def test_phone_distance_makes_a_vowel_for_a_vowel_cheap():
    assert phone_distance(["JH", "OW", "N", "Z"], ["JH", "AA", "N", "Z"]) == 0.5
    assert phone_distance(["T", "AA", "M"], ["P", "AA", "M"]) == 1.0
    assert phone_distance(["P", "AO", "L"], ["B", "AO", "L"]) == 0.5  # voicing blurs on the phone
    assert phone_distance([], ["S", "EH"]) == 2.0


def test_a_turned_down_number_leaves_the_grammar_and_numbers_have_sound_alikes():
    grammar = build_grammar(["Sarah", "125", "129", "301"], lookup=lookup)
    assert "one two nine" in grammar.request_jsgf() and "one two nine" not in grammar.request_jsgf(["129"])
    assert "one two five" in grammar.request_jsgf(["129"])
    assert grammar.sound_alikes_of("extension one two five please") == ("extension one two nine",)
    assert grammar.sound_alikes_of("extension three oh one") == ()  # nothing close to 301
