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
