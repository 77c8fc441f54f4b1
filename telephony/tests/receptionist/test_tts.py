import asyncio

import pytest

from telephony.receptionist.audio import rms_dbfs
from telephony.receptionist.tts import EspeakSynthesizer, SpeechSynthesisError, espeak_voice

from .conftest import run, watch_the_loop


@pytest.mark.parametrize(
    ("voice", "language", "expected"),
    [
        ("en-us", "en-US", "en-us"),
        ("en-gb", "en-US", "en-gb"),
        ("en-us+f3", "", "en-us+f3"),
        ("EN_GB+m2", "", "en-gb+m2"),
        ("en-us+nonsense", "", "en-us"),  # unknown variant: the plain voice
        ("klingon", "en-GB", "en-gb"),  # unknown voice: the agent's language
        ("klingon", "tlh", "en-us"),  # neither: the default
        ("", "", "en-us"),
    ],
)
def test_agent_voice_settings_choose_the_espeak_voice(voice, language, expected):
    assert espeak_voice(voice, language) == expected


def test_a_prompt_comes_at_both_call_rates(tmp_path):
    tts = EspeakSynthesizer(cache_dir=tmp_path)
    prompt = run(tts.render("Transferring you to Sarah Jones.", voice="en-gb"))
    assert prompt.voice == "en-gb"
    assert len(prompt.pcm16k) == 2 * len(prompt.pcm8k)
    assert prompt.pcm_at(8000) is prompt.pcm8k and prompt.pcm_at(16000) is prompt.pcm16k
    assert 1.0 < prompt.duration < 4.0
    assert prompt.duration == pytest.approx(len(prompt.pcm8k) / 2 / 8000)
    assert rms_dbfs(prompt.pcm8k) > -35  # speech, not silence
    with pytest.raises(ValueError):
        prompt.pcm_at(44100)


def test_each_text_and_voice_is_rendered_once_then_cached_in_memory_and_on_disk(tmp_path):
    tts = EspeakSynthesizer(cache_dir=tmp_path)
    first = run(tts.render("Who would you like to speak to?"))
    again = run(tts.render("  Who would you like   to speak to? "))
    other_voice = run(tts.render("Who would you like to speak to?", voice="en-us+f3"))
    assert tts.renders == 2
    assert again is first
    assert other_voice.pcm8k != first.pcm8k
    assert len(list(tmp_path.rglob("*.pcm"))) == 4  # two prompts, two rates

    restarted = EspeakSynthesizer(cache_dir=tmp_path)
    from_disk = run(restarted.render("Who would you like to speak to?"))
    assert restarted.renders == 0
    assert from_disk.pcm8k == first.pcm8k and from_disk.pcm16k == first.pcm16k


def test_memory_cache_is_bounded(tmp_path):
    tts = EspeakSynthesizer(cache_dir=None, memory_items=2)
    for text in ("one", "two", "three"):
        run(tts.render(text))
    run(tts.render("one"))  # evicted, so rendered again
    assert tts.renders == 4


def test_concurrent_requests_for_one_prompt_share_one_render(tmp_path):
    tts = EspeakSynthesizer(cache_dir=tmp_path)

    async def together():
        return await asyncio.gather(*(tts.render("Please hold.") for _ in range(5)))

    prompts = run(together())
    assert tts.renders == 1
    assert all(p is prompts[0] for p in prompts)


def test_rendering_does_not_block_the_event_loop(tmp_path):
    tts = EspeakSynthesizer(cache_dir=tmp_path)

    sentence = "This is a long sentence that takes espeak a little while to say and to filter, twice over."
    watched = run(watch_the_loop(tts.render(sentence), tick=0.005))
    stall, ticks, took = watched.longest_stall, watched.ticks, watched.took
    assert tts.renders == 1
    assert ticks > 3
    # The loop kept turning while espeak-ng and the filters ran: rendering on the loop would stall
    # it for most of the render. Relative to the render's time, so a loaded machine does not fail it.
    assert stall < 0.5 * took, (stall, took)


def test_a_missing_engine_is_a_clear_error(tmp_path):
    tts = EspeakSynthesizer(cache_dir=tmp_path, executable="/nonexistent/espeak-ng")
    with pytest.raises(SpeechSynthesisError, match="cannot run"):
        run(tts.render("Hello."))
    with pytest.raises(ValueError):
        run(tts.render("   "))
