import pytest

from telephony.receptionist.matching import ExtensionsMatcher, SimpleDirectoryMatcher

from .conftest import DIRECTORY


@pytest.fixture(params=["simple", "extensions"])
def any_matcher(request):
    if request.param == "simple":
        return SimpleDirectoryMatcher(DIRECTORY)
    pytest.importorskip("extensions.matching")
    return ExtensionsMatcher.for_entries(DIRECTORY)


@pytest.mark.parametrize(
    ("phrase", "extension"),
    [
        ("sarah jones please", "101"),
        ("sales team", "101"),
        ("support", "102"),
        ("can i speak to john please", "102"),
        ("tech", "102"),
        ("extension one oh two", "102"),
        ("transfer me to sarah miller", "103"),
        ("miller", "103"),
    ],
)
def test_one_clear_match(any_matcher, phrase, extension):
    found = any_matcher.match(phrase)
    assert found.confident and not found.ambiguous
    assert found.best.extension == extension


def test_two_sarahs_are_ambiguous_with_their_departments(any_matcher):
    found = any_matcher.match("sarah")
    assert found.ambiguous and not found.confident
    assert {(c.extension, c.department) for c in found.candidates[:2]} == {
        ("101", "Sales"),
        ("103", "Support"),
    }


def test_nothing_matches_nonsense(any_matcher):
    found = any_matcher.match("banana helicopter")
    assert found.candidates == () and found.best is None
    assert not found.confident and not found.ambiguous


def test_candidates_carry_the_person_to_name_in_the_confirmation(any_matcher):
    best = any_matcher.match("sales team").best
    assert (best.display_name, best.owner, best.spoken_name) == ("Sales", "Sarah Jones", "Sarah Jones")
    reception = any_matcher.extensions()["100"]
    assert reception.spoken_name == "Reception"


def test_vocabulary_lists_every_name_once(any_matcher):
    vocabulary = [v.casefold() for v in any_matcher.vocabulary()]
    for name in (
        "sales",
        "sarah jones",
        "sarah",
        "jones",
        "sales team",
        "john smith",
        "tech",
        "sarah miller",
    ):
        assert name in vocabulary
    assert len(vocabulary) == len(set(vocabulary))
    assert set(any_matcher.extensions()) == {"100", "101", "102", "103"}
