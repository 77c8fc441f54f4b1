"""The default agent on a real call: the receptionist hears "Sarah Jones please" (espeak-ng
through a G.711 line, sent as RTP by the PBX) and transfers to 101 with a REFER."""

from __future__ import annotations

import asyncio

import pytest

from telephony.receptionist.phoneline import caller_audio
from telephony.tests.test_calls_e2e import (  # noqa: F401 — fixtures
    DID,
    events_of,
    registered_pbx,
    run,
    start_engine,
    trunk,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def engine(tmp_path, trunk):  # noqa: F811
    thread = start_engine(tmp_path, agent_mode="receptionist", rtp_port_min=32000, rtp_port_max=32999)
    assert thread.call(thread.engine.calls.agents._speech_recognition(), timeout=120)
    yield thread
    thread.stop()


def test_spoken_name_is_transferred_to_its_extension(engine, tmp_path):
    speech = caller_audio("Sarah Jones please", wav_path=tmp_path / "caller.wav")

    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            call = await pbx.call(DID, codecs=("PCMU",))
            assert call.response.status == 200
            await asyncio.sleep(3.0)  # the first message
            await call.media.play(speech)
            refer = await pbx.wait_for("REFER", timeout=20)
            await asyncio.wait_for(call.ended.wait(), 10)
            return refer
        finally:
            pbx.close()

    refer = run(scenario(), timeout=60)
    assert refer.headers.get("Refer-To") == "<sip:101@pbx.acme.test>"
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    assert ended["outcome"] == "transferred"
    understood = ended["understanding"]
    assert understood["extension"] == "101" and understood["method"] == "speech"
    assert "jones" in understood["text"].lower() and understood["confidence"] > 0.2


def test_the_refer_goes_out_while_the_confirmation_is_still_playing(engine, tmp_path):
    """The REFER is not held back until "Transferring you to Sarah Jones." has been said: it goes
    out when the decision is taken, and the confirmation goes on on the RTP stream meanwhile
    (the PBX here takes 3 s to report the transfer done, as one ringing the extension would)."""
    import audioop

    from telephony.calls.pbx_peer import TransferScript

    speech = caller_audio("Sarah Jones please")

    async def scenario():
        loop = asyncio.get_running_loop()
        pbx = await registered_pbx(engine, transfer=TransferScript(notify=(100, 180, 200), delay=1.0))
        heard: list[tuple[float, int]] = []  # (arrival, loudness) of each frame the engine sends
        try:
            call = await pbx.call(DID, codecs=("PCMA",))
            assert call.response.status == 200

            async def listen():
                while (frame := await call.media.caller_audio.get()) != b"":
                    heard.append((loop.time(), audioop.rms(frame, 2)))

            listener = asyncio.create_task(listen())
            await asyncio.sleep(3.0)  # the first message
            await call.media.play(speech)
            await pbx.wait_for("REFER", timeout=20)
            refer_at = loop.time()
            await asyncio.wait_for(call.ended.wait(), 15)
            listener.cancel()
            return refer_at, heard
        finally:
            pbx.close()

    refer_at, heard = run(scenario(), timeout=60)
    spoken_after = [t for t, loudness in heard if t > refer_at and loudness > 300]
    # "Transferring you to Sarah Jones." lasts about 2 s; most of it comes after the REFER.
    assert len(spoken_after) * 0.02 > 0.8, f"{len(spoken_after)} loud frames after the REFER"
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    assert ended["outcome"] == "transferred" and ended["understanding"]["extension"] == "101"


@pytest.fixture
def sound_alikes(trunk):  # noqa: F811
    """Tom Hall and Tim Hill, there before the engine loads the directory: they sound alike, so
    the receptionist checks a hearing of either ("Did you want Tom Hall?")."""
    from extensions.rules import ExtensionValues
    from extensions.services import extension_create

    for number, owner in (("103", "Tom Hall"), ("104", "Tim Hill")):
        extension_create(
            trunk=trunk, values=ExtensionValues(number=number, display_name="Warehouse", owner=owner)
        )


def test_no_with_a_name_to_the_check_is_a_request_for_that_name(sound_alikes, engine, tmp_path):
    """ "Did you want Tom Hall?" — "No, I said John Smith." is taken as a request for John
    Smith (transferred, or checked once more if heard unclearly), not as a bare "no" that sends
    the caller round "Who would you like to speak to?" again."""
    request = caller_audio("Tom Hall please", wav_path=tmp_path / "request.wav")
    answer = caller_audio("No, I said John Smith.", wav_path=tmp_path / "answer.wav")
    yes = caller_audio("yes", wav_path=tmp_path / "yes.wav")

    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            call = await pbx.call(DID, codecs=("PCMU",))
            assert call.response.status == 200
            await asyncio.sleep(3.0)  # the first message
            await call.media.play(request)
            await asyncio.sleep(2.5)  # "Did you want Tom Hall?"
            await call.media.play(answer)
            try:
                refer = await pbx.wait_for("REFER", timeout=4)
            except TimeoutError:  # "Did you want John Smith?"
                await call.media.play(yes)
                refer = await pbx.wait_for("REFER", timeout=10)
            await asyncio.wait_for(call.ended.wait(), 10)
            return refer
        finally:
            pbx.close()

    refer = run(scenario(), timeout=60)
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    turns = ended["understanding"]["turns"]
    assert refer.headers.get("Refer-To") == "<sip:102@pbx.acme.test>"
    assert turns[0]["outcome"] == "confirm" and "tom hall" in turns[0]["text"]
    assert turns[1]["text"].startswith("no") and "john" in turns[1]["text"]
    assert turns[1]["outcome"] in ("transfer", "confirm") and turns[-1]["outcome"] == "transfer"
