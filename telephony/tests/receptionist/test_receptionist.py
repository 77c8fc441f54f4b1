"""The receptionist end to end over an in-memory call: real TTS, turn detection, recognition and
dialogue; only the call (RTP, SIP) is a test double, with a virtual clock."""

import pytest

from telephony.receptionist import prompts
from telephony.receptionist.asr import PocketsphinxRecognizer
from telephony.receptionist.audio import resample
from telephony.receptionist.dialogue import AgentSettings, Outcome
from telephony.receptionist.receptionist import Receptionist, TransferOutcome
from telephony.receptionist.scripted_call import CallerTurn, ScriptedCall

from .conftest import run

pytestmark = pytest.mark.slow


class Transcript:
    """The synthesiser, noting what the receptionist said."""

    def __init__(self, tts):
        self.tts = tts
        self.said: list[str] = []

    async def render(self, text, *, voice=None, language=None):
        self.said.append(text)
        return await self.tts.render(text, voice=voice, language=language)


def converse(call: ScriptedCall, matcher, tts, **settings):
    transcript = Transcript(tts)
    receptionist = Receptionist(
        call=call,
        settings=AgentSettings(**settings),
        matcher=matcher,
        tts=transcript,
        recognizer=PocketsphinxRecognizer(),
        clock=call.clock,
    )
    understanding = run(receptionist.run())
    return understanding, transcript.said


def says(pcm: bytes, **options) -> CallerTurn:
    return CallerTurn(pcm=pcm, **options)


def test_sarah_jones_please_is_transferred_to_101(speak, matcher, tts):
    call = ScriptedCall([says(speak("Sarah Jones please", voice="en-us", speed=130))])
    understanding, said = converse(call, matcher, tts)
    assert said == [prompts.DEFAULT_GREETING, "Transferring you to Sarah Jones."]
    assert call.transfers == ["101"]
    assert all(p.completed for p in call.played)  # the confirmation was heard before the transfer
    assert not call.hung_up
    assert (understanding.extension, understanding.method) == ("101", "speech")
    assert "jones" in understanding.text and understanding.confidence >= 0.8
    # Decided within 300 ms of the caller's voice stopping (virtual time: the VAD's part).
    assert 0 < understanding.decided_at - call.speech_ended_at[0] <= 0.3


@pytest.mark.parametrize(
    ("text", "voice", "speed", "law", "extension"),
    [
        ("sales team", "en-us+f3", 150, "alaw", "101"),
        ("support please", "en-us", 130, "ulaw", "102"),
        ("support please", "en-us+m3", 150, "alaw", "102"),
        ("can I speak to John Smith", "en-us", 150, "alaw", "102"),
    ],
)
def test_aliases_and_names_reach_their_extension(speak, matcher, tts, text, voice, speed, law, extension):
    # Some of these are heard near the transfer-at-once confidence; when the receptionist checks
    # ("Did you want …?") the caller says yes, as a caller would.
    voice_of = {"voice": voice, "speed": speed, "law": law}
    call = ScriptedCall([says(speak(text, **voice_of)), says(speak("yes", **voice_of))])
    first_message = "Thanks for calling Acme. Who would you like?"
    # Rendered ahead: on the virtual clock a slow first render let the call run out unanswered.
    run(tts.render(first_message, voice="en-us"))
    understanding, _ = converse(call, matcher, tts, first_message=first_message)
    assert call.transfers == [extension]
    assert understanding.extension == extension


def test_an_unsure_hearing_is_checked_with_the_caller(speak, matcher, tts):
    # A lone word in this voice is heard right but not surely (about 0.5).
    voice = {"voice": "en-us+f3", "speed": 130, "law": "alaw"}
    call = ScriptedCall([says(speak("Sales", **voice)), says(speak("yes", **voice))])
    understanding, said = converse(call, matcher, tts)
    assert said[1:] == ["Did you want Sarah Jones?", "Transferring you to Sarah Jones."]
    assert call.transfers == ["101"]
    assert [t.outcome for t in understanding.turns] == [Outcome.CONFIRM, Outcome.TRANSFER]


def test_an_ambiguous_first_name_gets_a_question(speak, matcher, tts):
    call = ScriptedCall(
        [
            says(speak("I'd like Sarah please", voice="en-us", speed=130)),
            says(speak("Sales", voice="en-us", speed=130)),
        ]
    )
    understanding, said = converse(call, matcher, tts)
    assert said[1] == "Sarah in Sales or Sarah in Support?"
    assert call.transfers == ["101"]
    assert [t.outcome for t in understanding.turns] == [Outcome.CHOOSE, Outcome.TRANSFER]


def test_nonsense_is_asked_again_then_sent_to_the_fallback(speak, matcher, tts):
    call = ScriptedCall(
        [
            says(speak("the weather is nice today", voice="en-us", speed=130)),
            says(speak("banana helicopter", voice="en-us", speed=130, law="alaw", seed=2)),
        ]
    )
    understanding, said = converse(call, matcher, tts, fallback_extension="100")
    assert said[1:] == [prompts.ASK_AGAIN, prompts.PUTTING_THROUGH]
    assert call.transfers == ["100"]
    assert understanding.method == "fallback"


def test_digits_keyed_during_the_greeting_interrupt_it_and_transfer(matcher, tts):
    call = ScriptedCall([CallerTurn(digits="102", barge_in_after=1.0)])
    understanding, said = converse(call, matcher, tts)
    assert call.transfers == ["102"]
    assert not call.played[0].completed  # the greeting was cut off
    assert call.played[0].ended_at < 1.5
    assert understanding.method == "dtmf"


def test_talking_over_the_greeting_stops_it(speak, matcher, tts):
    call = ScriptedCall([says(speak("Sarah Jones please", voice="en-us", speed=130), barge_in_after=1.0)])
    understanding, said = converse(call, matcher, tts)
    greeting = call.played[0]
    assert not greeting.completed
    assert greeting.ended_at - greeting.started_at < 1.5  # stopped ~100 ms after the caller began
    assert call.transfers == ["101"]


def test_silence_ends_the_call_with_a_closing_line(matcher, tts):
    call = ScriptedCall([])
    understanding, said = converse(call, matcher, tts, silence_timeout=5)
    assert said == [prompts.DEFAULT_GREETING, prompts.SILENCE_GOODBYE]
    assert call.hung_up and call.transfers == []
    assert call.played[-1].completed  # the goodbye was heard before the BYE
    assert understanding.hangup_reason == "silence_timeout"
    greeting_end = call.played[0].ended_at
    assert 5.0 <= call.played[1].started_at - greeting_end < 5.5


def test_the_maximum_call_duration_ends_the_call(matcher, tts):
    call = ScriptedCall([])
    understanding, said = converse(call, matcher, tts, silence_timeout=60, max_call_duration=12)
    assert said[-1] == prompts.TIME_LIMIT_GOODBYE
    assert call.hung_up
    assert understanding.hangup_reason == "max_call_duration"
    assert 12.0 <= call.played[-1].started_at < 12.6


def test_a_refused_transfer_goes_to_the_fallback(speak, matcher, tts):
    call = ScriptedCall(
        [says(speak("Sarah Jones please", voice="en-us", speed=130))],
        transfer_outcome=lambda extension: TransferOutcome(accepted=extension == "100", status=486),
    )
    understanding, said = converse(call, matcher, tts, fallback_extension="100")
    assert call.transfers == ["101", "100"]
    assert said[-1] == prompts.unavailable_then_fallback("Sarah Jones")
    assert (understanding.extension, understanding.method) == ("100", "fallback")


def test_the_caller_hanging_up_ends_the_receptionist(matcher, tts):
    call = ScriptedCall([], max_seconds=2.0)
    understanding, _ = converse(call, matcher, tts)
    assert understanding.hangup_reason == "caller_hung_up"
    assert not call.hung_up


def test_a_g722_call_speaks_and_listens_at_16_khz(speak, matcher, tts):
    request = resample(speak("Sarah Jones please", voice="en-us", speed=130), from_rate=8000, to_rate=16000)
    call = ScriptedCall([says(request)], sample_rate=16000)
    understanding, _ = converse(call, matcher, tts)
    greeting = run(tts.render(prompts.DEFAULT_GREETING, voice="en-us"))
    assert call.played[0].pcm == greeting.pcm16k
    assert call.transfers == ["101"]
