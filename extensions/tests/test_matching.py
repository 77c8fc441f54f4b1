"""Who does the caller mean: names, typos, sound-alikes, spoken digits and ambiguity."""

from __future__ import annotations

import pytest
from django.http import Http404

from extensions.matching import DirectoryEntry, DirectoryMatcher, split_numbers, tokens_of
from extensions.selectors import directory_matcher, directory_vocabulary, extension_match

GUIDE = [
    DirectoryEntry("101", "Sales", "Sarah Jones", "Sales", ("sarah", "sales team"), id=1),
    DirectoryEntry("102", "Support", "John Smith", "Support", ("support", "tech"), id=2),
]
TWO_SARAHS = [
    *GUIDE,
    DirectoryEntry("103", "Sarah Lee", "Sarah Lee", "Support"),
    DirectoryEntry("104", "Mike Brown", "Mike Brown", "Sales"),
]


@pytest.fixture(scope="module")
def guide() -> DirectoryMatcher:
    return DirectoryMatcher(GUIDE)


@pytest.fixture(scope="module")
def sarahs() -> DirectoryMatcher:
    return DirectoryMatcher(TWO_SARAHS)


@pytest.mark.parametrize(
    ("phrase", "extension"),
    [
        ("sarah", "101"),
        ("sales team", "101"),
        ("Sara Jones", "101"),
        ("can I talk to Sarah in sales", "101"),
        ("Could you transfer me to Sarah Jones please", "101"),
        ("tech support", "102"),
        ("John please", "102"),
        ("extension one oh two", "102"),
        ("one zero two", "102"),
        ("1 0 2", "102"),
        ("ext102", "102"),
        ("one hundred and two", "102"),
        ("tech", "102"),
        ("jhon smith", "102"),  # a typo
        ("suport", "102"),
        ("sails", "101"),  # a mishearing that sounds the same
    ],
)
def test_guide_directory(guide, phrase, extension):
    result = guide.match(phrase)
    assert result.confident and not result.ambiguous
    assert result.best is not None and result.best.extension == extension
    assert result.candidates[0].extension_id == int(extension) - 100


def test_what_matched_is_explained(guide):
    best = guide.match("Sara Jones").best
    assert best.score >= 90
    assert ("owner", "Sarah Jones", "sara jones") in [(m.field, m.value, m.heard) for m in best.matched]
    number = guide.match("extension one oh two").best
    assert [(m.field, m.value, m.heard) for m in number.matched] == [("extension", "102", "one oh two")]


@pytest.mark.parametrize(
    "phrase", ["banana helicopter", "purple monkey dishwasher", "", "um", "please", "one"]
)
def test_nonsense_is_not_a_confident_match(guide, phrase):
    result = guide.match(phrase)
    assert not result.confident and result.best is None
    assert all(c.score < 88 for c in result.candidates)


def test_two_sarahs_are_ambiguous_with_both_offered(sarahs):
    result = sarahs.match("I'd like to speak to Sarah")
    assert result.ambiguous and not result.confident and result.best is None
    assert {c.extension for c in result.candidates[:2]} == {"101", "103"}


@pytest.mark.parametrize(
    ("phrase", "extension"),
    [("Sarah in sales", "101"), ("sarah from support", "103"), ("Sarah Lee", "103"), ("sarah jones", "101")],
)
def test_a_department_or_surname_disambiguates(sarahs, phrase, extension):
    result = sarahs.match(phrase)
    assert result.confident and result.best.extension == extension


def test_a_named_extension_beats_a_department_member(sarahs):
    # "Sales" is extension 101's name; Mike is only in the Sales department.
    result = sarahs.match("sales")
    assert result.best.extension == "101"
    assert [c.extension for c in result.candidates] == ["101", "104"]


def test_department_only_matches_are_ambiguous():
    matcher = DirectoryMatcher(
        [
            DirectoryEntry("201", "Ann Lee", "Ann Lee", "Billing"),
            DirectoryEntry("202", "Bo Chen", "Bo Chen", "Billing"),
        ]
    )
    result = matcher.match("billing please")
    assert result.ambiguous and {c.extension for c in result.candidates} == {"201", "202"}


def test_spoken_numbers():
    def digits(phrase: str) -> list[str]:
        return [d for d, _ in split_numbers(tokens_of(phrase))[0]]

    assert digits("extension one oh two") == ["102"]
    assert digits("double five seven") == ["557"]
    assert digits("triple nine") == ["999"]
    assert digits("twenty one") == ["21"]
    assert digits("five twenty one") == ["521"]
    assert digits("one hundred twenty three") == ["123"]
    assert digits("two thousand and five") == ["2005"]
    assert digits("two thousand one hundred") == ["2100"]
    assert digits("one oh two or one oh three") == ["102", "103"]
    assert digits("sarah please") == []
    assert split_numbers(tokens_of("sarah one oh one please"))[1] == ["sarah", "please"]


def test_tokens_ignore_accents_case_and_punctuation():
    assert tokens_of("José O'Brien-Núñez, EXT.101!") == ["jose", "obrien", "nunez", "ext", "101"]


def test_filler_words_the_directory_uses_are_kept():
    matcher = DirectoryMatcher([DirectoryEntry("300", "Help desk", "", "IT", ("help",))])
    assert matcher.match("help please").best.extension == "300"


def test_vocabulary_lists_names_parts_aliases_and_departments_once(guide, sarahs):
    assert guide.vocabulary() == [
        "Sales",
        "Sarah Jones",
        "Sarah",
        "Jones",
        "sales team",
        "Support",
        "John Smith",
        "John",
        "Smith",
        "tech",
    ]
    words = sarahs.vocabulary()
    assert len(words) == len({w.casefold() for w in words})
    assert {"Sarah Lee", "Lee", "Mike Brown", "Mike", "Brown"} <= set(words)


def test_repeated_lookups_use_the_token_cache(guide):
    first = guide.similar_tokens("sara")
    assert guide.similar_tokens("sara") is first
    assert dict(first)["sarah"] > 0.9


@pytest.mark.django_db
def test_selectors_build_from_the_database_and_stay_in_the_workspace(
    tenant, other_tenant, trunk, other_trunk, guide_extensions, foreign_extension
):
    result = extension_match(tenant=tenant, trunk_id=trunk.pk, phrase="tech support", cached=False)
    assert result.best.extension == "102" and result.best.extension_id == guide_extensions[1].pk
    assert "Sarah Jones" in directory_vocabulary(tenant=tenant, trunk_id=trunk.pk)
    # Their matcher is warm in this process: asking for it from our workspace is still a 404.
    assert (
        extension_match(tenant=other_tenant, trunk_id=other_trunk.pk, phrase="gina").best.extension == "201"
    )
    for cached in (True, False):
        with pytest.raises(Http404):
            directory_matcher(tenant=tenant, trunk_id=other_trunk.pk, cached=cached)


@pytest.mark.django_db
def test_cached_matcher_is_rebuilt_when_the_configuration_changes(
    tenant, trunk, guide_extensions, django_capture_on_commit_callbacks
):
    from extensions.rules import ExtensionValues
    from extensions.services import extension_create

    first = directory_matcher(tenant=tenant, trunk_id=trunk.pk)
    assert directory_matcher(tenant=tenant, trunk_id=trunk.pk) is first
    with django_capture_on_commit_callbacks(execute=True):
        extension_create(trunk=trunk, values=ExtensionValues("103", "Billing", "Ann Lee", "Finance", ()))
    rebuilt = directory_matcher(tenant=tenant, trunk_id=trunk.pk)
    assert rebuilt is not first
    assert rebuilt.match("billing").best.extension == "103"
