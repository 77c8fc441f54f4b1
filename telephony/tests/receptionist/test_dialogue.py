"""The conversation as a state machine: plain events, plain times, no audio."""

from types import SimpleNamespace

import pytest

from telephony.receptionist import prompts
from telephony.receptionist.asr import Hypothesis
from telephony.receptionist.dialogue import (
    AgentSettings,
    Dialogue,
    Hangup,
    HangupReason,
    Listen,
    Outcome,
    Say,
    State,
    StopSpeaking,
    Transfer,
)
from telephony.receptionist.grammar import Expectation

SURE = 0.95
UNSURE = 0.5


def started(matcher, **settings) -> Dialogue:
    dialogue = Dialogue(settings=AgentSettings(**settings), matcher=matcher, started_at=0.0)
    dialogue.start()
    dialogue.prompt_finished(3.0)
    return dialogue


def heard(dialogue: Dialogue, text: str, confidence: float = SURE, at: float = 5.0):
    dialogue.speech_started(at - 1.0)
    return dialogue.heard(Hypothesis(text, confidence), speech_ended_at=at, now=at + 0.25)


def said(actions) -> list[str]:
    return [a.text for a in actions if isinstance(a, Say)]


def test_greets_with_the_agents_first_message_or_a_clear_default(matcher):
    custom = Dialogue(settings=AgentSettings(first_message="Welcome to Acme."), matcher=matcher, started_at=0)
    assert custom.start() == [Say("Welcome to Acme."), Listen(Expectation.REQUEST)]
    plain = Dialogue(settings=AgentSettings(first_message="  "), matcher=matcher, started_at=0)
    assert plain.start() == [Say(prompts.DEFAULT_GREETING), Listen(Expectation.REQUEST)]
    assert plain.state is State.GREETING and plain.speaking


def test_one_clear_match_is_confirmed_and_transferred(matcher):
    dialogue = started(matcher)
    actions = heard(dialogue, "sarah jones please", at=7.0)
    assert actions == [Say("Transferring you to Sarah Jones."), Transfer("101", "Sales")]
    assert dialogue.state is State.TRANSFERRING
    record = dialogue.understanding
    assert (record.extension, record.method, record.text, record.confidence) == (
        "101",
        "speech",
        "sarah jones please",
        SURE,
    )
    assert (record.heard_at, record.decided_at) == (7.0, 7.25)
    assert record.decision_seconds == pytest.approx(0.25)
    assert record.as_dict()["turns"][0]["outcome"] == Outcome.TRANSFER


@pytest.mark.parametrize(("text", "extension"), [("sales team", "101"), ("support", "102"), ("tech", "102")])
def test_aliases_and_departments(matcher, text, extension):
    actions = heard(started(matcher), text)
    assert actions[-1].extension == extension


def test_an_unsure_hearing_is_checked_first(matcher):
    dialogue = started(matcher)
    assert heard(dialogue, "support", UNSURE) == [Say("Did you want John Smith?"), Listen(Expectation.YES_NO)]
    assert dialogue.state is State.CONFIRMING
    dialogue.prompt_finished(8.0)
    assert heard(dialogue, "yes please", at=10.0)[-1] == Transfer("102", "Support")


def test_no_to_the_check_asks_again(matcher):
    dialogue = started(matcher)
    heard(dialogue, "support", UNSURE)
    actions = heard(dialogue, "no", at=10.0)
    assert actions[0] == Say(prompts.ASK_AFTER_NO)
    listen = actions[1]
    assert isinstance(listen, Listen) and listen.expect is Expectation.REQUEST
    # The recogniser is told not to hear John Smith again; "Sarah" still names Sarah Jones.
    assert {"John Smith", "John", "Smith"} <= listen.exclude and "Sarah" not in listen.exclude
    assert dialogue.state is State.LISTENING and dialogue.misses == 0


@pytest.mark.parametrize("answer", ["no john smith", "no i said john smith please", "nope support"])
def test_no_with_a_name_is_a_new_request_for_that_name(matcher, answer):
    dialogue = started(matcher)
    heard(dialogue, "sarah jones", UNSURE)
    actions = heard(dialogue, answer, at=10.0)
    assert actions == [Say("Transferring you to John Smith."), Transfer("102", "Support")]
    assert [t.outcome for t in dialogue.understanding.turns] == [Outcome.CONFIRM, Outcome.TRANSFER]


def test_no_with_the_turned_down_name_itself_does_not_offer_it_again(matcher):
    dialogue = started(matcher, fallback_extension="100")
    heard(dialogue, "sarah jones", UNSURE)
    actions = heard(dialogue, "no sarah jones", at=10.0)
    assert not any(isinstance(a, Transfer) for a in actions)
    assert "Sarah Jones" not in " ".join(said(actions))


def test_a_turned_down_name_is_not_proposed_again_and_three_noes_reach_the_fallback(matcher):
    dialogue = started(matcher, fallback_extension="100")
    heard(dialogue, "john smith", UNSURE)
    heard(dialogue, "no", at=10.0)
    dialogue.prompt_finished(11.0)
    # Heard as John Smith again (the same voice, misheard the same way): not offered twice.
    assert Transfer("102", "John Smith") not in heard(dialogue, "john smith", at=13.0)
    for name, at in (("sarah jones", 20.0), ("sarah miller", 30.0)):
        heard(dialogue, name, UNSURE, at=at)
        actions = heard(dialogue, "no", at=at + 2)
    assert [a.extension for a in actions if isinstance(a, Transfer)] == ["100"]
    assert dialogue.understanding.method == "fallback"


def test_two_sarahs_get_a_question_by_department_and_the_answer_resolves_it(matcher):
    dialogue = started(matcher)
    assert heard(dialogue, "can i speak to sarah") == [
        Say("Sarah in Sales or Sarah in Support?"),
        Listen(Expectation.REQUEST),
    ]
    assert dialogue.state is State.CHOOSING
    dialogue.prompt_finished(8.0)
    assert heard(dialogue, "support", UNSURE, at=10.0) == [
        Say("Transferring you to Sarah Miller."),
        Transfer("103", "Sarah Miller"),
    ]


def test_an_answer_to_the_question_can_name_someone_else(matcher):
    dialogue = started(matcher)
    heard(dialogue, "sarah")
    assert heard(dialogue, "john smith", at=10.0)[-1] == Transfer("102", "Support")


def test_nothing_understood_asks_again_once_then_the_fallback(matcher):
    dialogue = started(matcher, fallback_extension="100")
    assert heard(dialogue, "", 0.0) == [Say(prompts.ASK_AGAIN), Listen(Expectation.REQUEST)]
    assert heard(dialogue, "can i speak to", 0.0, at=12.0) == [  # the audio ran out mid-sentence
        Say(prompts.PUTTING_THROUGH),
        Transfer("100", "Reception"),
    ]
    assert dialogue.understanding.method == "fallback"
    assert [t.outcome for t in dialogue.understanding.turns] == [Outcome.ASK_AGAIN, Outcome.FALLBACK]


def test_nothing_understood_without_a_fallback_is_a_polite_goodbye(matcher):
    dialogue = started(matcher)
    heard(dialogue, "")
    assert heard(dialogue, "", at=12.0) == [
        Say(prompts.NOT_FOUND_GOODBYE),
        Hangup(HangupReason.NOT_UNDERSTOOD),
    ]
    assert dialogue.state is State.CLOSING
    assert dialogue.understanding.hangup_reason == "not_understood"


@pytest.mark.parametrize("text", ["operator", "reception please", "can i speak to the receptionist"])
def test_asking_for_the_operator_goes_to_the_fallback(matcher, text):
    directory_without_reception = type(matcher)([e for e in matcher.entries if e.number != "100"])
    actions = heard(started(directory_without_reception, fallback_extension="100"), text)
    assert actions[-1] == Transfer("100", "the operator")


def test_asking_for_an_operator_that_does_not_exist_asks_again(matcher):
    directory_without_reception = type(matcher)([e for e in matcher.entries if e.number != "100"])
    assert heard(started(directory_without_reception), "operator") == [
        Say(prompts.NO_OPERATOR),
        Listen(Expectation.REQUEST),
    ]


def test_dtmf_extension_at_any_moment_even_during_the_greeting(matcher):
    dialogue = Dialogue(settings=AgentSettings(), matcher=matcher, started_at=0.0)
    dialogue.start()
    assert dialogue.digit("1", 1.0) == [StopSpeaking()]
    assert dialogue.digit("0", 1.2) == []
    assert dialogue.digit("2", 1.4) == [Say("Transferring you to John Smith."), Transfer("102", "Support")]
    assert dialogue.understanding.method == "dtmf"


def test_dtmf_zero_is_the_fallback_and_unknown_numbers_ask_again(matcher):
    dialogue = started(matcher, fallback_extension="100")
    assert dialogue.digit("9", 4.0) == [Say(prompts.no_such_extension("9")), Listen()]
    assert dialogue.digit("0", 6.0)[-1] == Transfer("100", "Reception")


def test_dtmf_inter_digit_timeout_and_hash(matcher):
    dialogue = started(matcher)
    dialogue.digit("1", 4.0)
    assert dialogue.next_deadline() == 6.0
    assert dialogue.tick(5.9) == []
    assert said(dialogue.tick(6.0)) == ["Sorry, there's no extension 1. Who would you like to speak to?"]
    dialogue.digit("1", 7.0)
    dialogue.digit("0", 7.1)
    assert dialogue.next_deadline() == 9.1
    assert dialogue.digit("#", 7.2) == [Say(prompts.NOT_FOUND_GOODBYE), Hangup(HangupReason.NOT_UNDERSTOOD)]


def test_the_caller_talking_over_a_prompt_stops_it(matcher):
    dialogue = Dialogue(settings=AgentSettings(), matcher=matcher, started_at=0.0)
    dialogue.start()
    assert dialogue.speech_started(1.0) == [StopSpeaking()]
    assert dialogue.speech_started(1.5) == []  # already stopped
    assert dialogue.state is State.LISTENING


def test_no_barge_in_while_transferring_or_closing(matcher):
    dialogue = started(matcher)
    heard(dialogue, "sarah jones")
    assert dialogue.speech_started(8.0) == []
    assert dialogue.digit("5", 8.0) == []


def test_silence_timeout_counts_from_the_end_of_the_last_prompt(matcher):
    dialogue = started(matcher, silence_timeout=30)
    assert dialogue.next_deadline() == 33.0
    assert dialogue.tick(32.9) == []
    assert dialogue.tick(33.0) == [Say(prompts.SILENCE_GOODBYE), Hangup(HangupReason.SILENCE)]
    assert dialogue.next_deadline() is None


def test_no_silence_timeout_while_someone_talks(matcher):
    dialogue = started(matcher, silence_timeout=30)
    dialogue.speech_started(10.0)
    assert dialogue.tick(45.0) == []  # a long speech is not silence
    dialogue.speech_discarded(46.0)  # it was only a cough
    assert dialogue.next_deadline() == 76.0


def test_max_call_duration_cuts_in_with_a_closing_line(matcher):
    dialogue = started(matcher, max_call_duration=60)
    heard(dialogue, "", at=50.0)  # "Sorry, I didn't catch that" is playing ...
    assert dialogue.next_deadline() == 60.0
    assert dialogue.tick(60.0) == [
        StopSpeaking(),
        Say(prompts.TIME_LIMIT_GOODBYE),
        Hangup(HangupReason.TIME_LIMIT),
    ]
    assert dialogue.understanding.hangup_reason == "max_call_duration"


def test_a_refused_transfer_goes_to_the_fallback_then_ends_politely(matcher):
    dialogue = started(matcher, fallback_extension="100")
    heard(dialogue, "john smith")
    assert dialogue.transfer_failed(9.0) == [
        Say(prompts.unavailable_then_fallback("John Smith")),
        Transfer("100", "Reception"),
    ]
    assert dialogue.transfer_failed(12.0) == [
        Say(prompts.unavailable_goodbye("Reception")),
        Hangup(HangupReason.TRANSFER_FAILED),
    ]


def test_a_refused_transfer_without_a_fallback_says_goodbye(matcher):
    dialogue = started(matcher)
    heard(dialogue, "john smith")
    assert dialogue.transfer_failed(9.0)[-1] == Hangup(HangupReason.TRANSFER_FAILED)
    assert dialogue.transfer_succeeded(10.0) == []


def test_settings_come_from_an_agent_row():
    agent = SimpleNamespace(
        first_message="Hi!",
        voice="en-gb",
        language="en-GB",
        fallback_extension="100",
        silence_timeout=20,
        max_call_duration=600,
    )
    settings = AgentSettings.from_agent(agent)
    assert settings == AgentSettings("Hi!", "en-gb", "en-GB", "100", 20.0, 600.0)
    blank = SimpleNamespace(
        first_message="",
        voice="",
        language="",
        fallback_extension="",
        silence_timeout=None,
        max_call_duration=None,
    )
    assert AgentSettings.from_agent(blank) == AgentSettings()


def test_choice_questions_fall_back_to_full_names_when_departments_do_not_help(matcher):
    from telephony.receptionist.dialogue import _choice_question
    from telephony.receptionist.matching import Candidate

    same_department = (
        Candidate("201", "Tom Hall", "Sales", owner="Tom Hall"),
        Candidate("202", "Tom Hill", "Sales", owner="Tom Hill"),
    )
    assert _choice_question(same_department) == "Tom Hall or Tom Hill?"
    twins = (Candidate("201", "Tom Hall", owner="Tom Hall"), Candidate("202", "Tom Hall", owner="Tom Hall"))
    assert _choice_question(twins) == "Tom Hall on extension 2 0 1 or Tom Hall on extension 2 0 2?"
    many = tuple(Candidate(str(300 + i), f"Sam {n}", owner=f"Sam {n}") for i, n in enumerate("ABCD"))
    assert "several people called Sam" in _choice_question(many)


def test_a_sure_hearing_that_sounds_like_someone_else_is_checked_first(matcher):
    dialogue = started(matcher)
    dialogue.speech_started(4.0)
    # Heard clearly as "smith", but "miller" (Sarah Miller) sounds like it to the recogniser.
    hypothesis = Hypothesis("smith please", SURE, sound_alikes=("miller",))
    actions = dialogue.heard(hypothesis, speech_ended_at=5.0, now=5.2)
    assert actions == [Say("Did you want John Smith?"), Listen(Expectation.YES_NO)]
    assert dialogue.understanding.turns[-1].outcome is Outcome.CONFIRM
    dialogue.prompt_finished(7.0)
    assert heard(dialogue, "yes", at=9.0)[-1] == Transfer("102", "Support")


def test_a_sound_alike_of_the_same_person_or_of_someone_turned_down_is_no_doubt(matcher):
    same = started(matcher)
    same.speech_started(4.0)
    actions = same.heard(
        Hypothesis("support", SURE, sound_alikes=("john smith",)), speech_ended_at=5.0, now=5.2
    )
    assert actions[-1] == Transfer("102", "Support")

    dialogue = started(matcher)
    heard(dialogue, "sarah miller", UNSURE)
    heard(dialogue, "no", at=10.0)  # not Sarah Miller
    dialogue.prompt_finished(11.0)
    dialogue.speech_started(12.0)
    hypothesis = Hypothesis("john smith", SURE, sound_alikes=("sarah miller",))
    assert dialogue.heard(hypothesis, speech_ended_at=13.0, now=13.2)[-1] == Transfer("102", "Support")


def test_an_unclear_name_at_the_last_chance_is_asked_about_not_sent_to_the_fallback(matcher):
    dialogue = started(matcher, fallback_extension="100")
    assert heard(dialogue, "smith", 0.1)[0] == Say(prompts.ASK_AGAIN)  # first time: again
    dialogue.prompt_finished(7.0)
    assert heard(dialogue, "miller", 0.1, at=12.0) == [
        Say("Did you want Sarah Miller?"),
        Listen(Expectation.YES_NO),
    ]
    dialogue.prompt_finished(14.0)
    actions = heard(dialogue, "no", at=16.0)
    assert actions[0] == Say(prompts.ASK_AFTER_NO) and "103" in actions[1].exclude  # nor her number
    assert dialogue.misses == 0  # a "no" is progress: the caller may try again


def test_a_whole_name_heard_unclearly_is_asked_about_at_once(matcher):
    dialogue = started(matcher, fallback_extension="100")
    assert heard(dialogue, "can i speak to john smith", 0.01) == [
        Say("Did you want John Smith?"),
        Listen(Expectation.YES_NO),
    ]


def test_part_of_a_name_heard_unclearly_is_asked_again(matcher):
    dialogue = started(matcher, fallback_extension="100")
    assert heard(dialogue, "can i speak to john", 0.01)[0] == Say(prompts.ASK_AGAIN)
