import pytest

from telephony.receptionist.audio import FRAME_SECONDS, frames
from telephony.receptionist.phoneline import add_noise, line_noise, silence, speech_end, through_line
from telephony.receptionist.turns import EnergyClassifier, SpeechEnded, SpeechStarted, TurnDetector


def feed_all(detector: TurnDetector, pcm: bytes) -> list[tuple[float, object]]:
    events = []
    for index, frame in enumerate(frames(pcm, detector.sample_rate), start=1):
        now = index * FRAME_SECONDS
        events += [(now, event) for event in detector.feed(frame, now)]
    return events


@pytest.mark.parametrize(
    ("voice", "speed", "law", "classifier"),
    [
        ("en-us", 150, "ulaw", "webrtc"),
        ("en-gb", 170, "alaw", "webrtc"),
        ("en-us+f3", 130, "ulaw", "webrtc"),
        ("en-us", 150, "alaw", "energy"),  # the fallback when webrtcvad is not installed
    ],
)
def test_one_request_is_one_turn_ended_within_300_ms_of_the_voice(speak, voice, speed, law, classifier):
    request = speak("can I speak to John Smith please", voice=voice, speed=speed, law=law, noise_rms=20)
    pcm = line_noise(1.0, law=law) + request + line_noise(1.5, law=law)
    detector = TurnDetector(classifier=EnergyClassifier() if classifier == "energy" else None)
    events = feed_all(detector, pcm)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    (started_at, started), (ended_at, ended) = events
    voice_end = 1.0 + speech_end(request)
    assert 1.0 < started.at < 1.6
    assert voice_end - 0.25 <= ended.at <= voice_end + 0.15  # the last frame classified as speech
    assert 0 < ended_at - voice_end <= 0.3  # decided within 300 ms of the caller stopping
    assert ended.voiced > 1.0
    assert ended.pcm.startswith(started.pre_roll)  # the utterance keeps the audio before the start
    assert len(started.pre_roll) >= 5 * 320


def test_a_quiet_line_is_not_speech():
    assert feed_all(TurnDetector(), line_noise(5.0, rms=40)) == []


def test_the_vads_first_frames_are_not_a_turn():
    # webrtcvad calls the first frames of a stream speech while it adapts; a loud start is not
    # a turn either way until `start_after` of it has been heard past the warm-up.
    assert feed_all(TurnDetector(), line_noise(0.3, rms=20)) == []


def test_a_cough_is_a_short_turn():
    cough = through_line(add_noise(silence(0.1), rms=4000, seed=3))
    events = feed_all(TurnDetector(), line_noise(0.5) + cough + line_noise(0.5))
    ended = [e for _, e in events if isinstance(e, SpeechEnded)]
    assert len(ended) == 1 and ended[0].short


def test_a_one_word_answer_is_not_short(speak):
    events = feed_all(TurnDetector(), line_noise(0.5) + speak("no", speed=170) + line_noise(0.5))
    ended = [e for _, e in events if isinstance(e, SpeechEnded)]
    assert len(ended) == 1 and not ended[0].short


def test_a_caller_who_never_stops_is_cut_at_max_utterance(speak):
    detector = TurnDetector(max_utterance=1.0)
    events = feed_all(detector, speak("can I speak to John Smith please, he is in support", speed=120))
    ended = [e for _, e in events if isinstance(e, SpeechEnded)]
    assert ended[0].forced
    assert len(ended[0].pcm) <= int((1.0 + 0.02) / FRAME_SECONDS) * 320


def test_works_at_16_khz_for_g722(speak):
    from telephony.receptionist.audio import resample

    wide = resample(
        line_noise(0.5) + speak("support please") + line_noise(0.8), from_rate=8000, to_rate=16000
    )
    events = feed_all(TurnDetector(sample_rate=16000), wide)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]


class Scripted:
    """Speech or not, frame by frame, as given."""

    def __init__(self, voiced: list[bool]) -> None:
        self.voiced = iter(voiced)

    def is_speech(self, frame: bytes) -> bool:
        return next(self.voiced)


@pytest.mark.parametrize(("complete", "quiet_frames"), [(False, 8), (True, 3)])
def test_a_whole_request_ends_after_a_shorter_hangover(complete, quiet_frames):
    voiced = [False] * 10 + [True] * 30 + [False] * 20
    detector = TurnDetector(classifier=Scripted(voiced), end_after=0.16, short_end_after=0.06)
    frame = b"\0" * 320
    ended_after = None
    for index in range(len(voiced)):
        if index == 25:
            detector.complete = complete  # the recogniser's partial hypothesis became a sentence
        if any(isinstance(e, SpeechEnded) for e in detector.feed(frame, (index + 1) * FRAME_SECONDS)):
            ended_after = index + 1 - 40  # non-speech frames heard when the turn ended
            break
    assert ended_after == quiet_frames
    assert detector.last_hangover == pytest.approx(quiet_frames * FRAME_SECONDS)
    assert not detector.complete  # the next turn starts with the full hangover again
