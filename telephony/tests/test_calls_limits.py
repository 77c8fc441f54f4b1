"""Call limits: the agent's max call duration ends the call with a closing line and a BYE; the
engine's backstop ends a call whose agent ignores the limit; the receptionist falls back to the
DTMF agent when speech recognition cannot load."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from smartalex.agents.models import Agent
from smartalex.tenancy.models import Role
from smartalex.tenancy.services import api_key_create
from telephony.tests.test_calls_e2e import (  # noqa: F401
    DID,
    events_of,
    key,
    registered_pbx,
    run,
    start_engine,
    trunk,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True)]


def engine_for(tmp_path, **calls):
    return start_engine(tmp_path, rtp_port_min=35000, rtp_port_max=35999, **calls)


@pytest.fixture
def short_agent(trunk):  # noqa: F811
    # Below the form's minimum of 10 s on purpose: the test must not take minutes.
    Agent.objects.filter(trunk=trunk).update(max_call_duration=2)
    return trunk


def test_agent_time_limit_says_goodbye_and_hangs_up(tmp_path, short_agent):
    engine = engine_for(tmp_path, agent_mode="dtmf")
    try:

        async def scenario():
            pbx = await registered_pbx(engine)
            try:
                call = await pbx.call(DID)
                await asyncio.wait_for(call.ended.wait(), 15)
                return call
            finally:
                pbx.close()

        call = run(scenario())
        assert call.bye_from_engine
        ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
        assert ended["outcome"] == "answered" and ended["hangup_reason"] == "max_call_duration"
    finally:
        engine.stop()


def test_engine_backstop_ends_a_call_its_agent_never_ends(tmp_path, short_agent):
    engine = engine_for(tmp_path, agent_mode="dtmf", agent_ws_port=0, duration_grace=0.5)
    _, raw = api_key_create(tenant=short_agent.tenant, name="silent", role=Role.ADMIN)
    try:

        async def scenario():
            # An external runtime that takes the call and then does nothing at all.
            websocket = await connect(f"ws://127.0.0.1:{engine.engine.calls.external.port}")
            await websocket.send(json.dumps({"type": "hello", "api_key": raw, "trunk_id": short_agent.pk}))
            assert json.loads(await websocket.recv())["type"] == "ready"
            pbx = await registered_pbx(engine)
            try:
                started = asyncio.get_running_loop().time()
                call = await pbx.call(DID)
                await asyncio.wait_for(call.ended.wait(), 15)
                lasted = asyncio.get_running_loop().time() - started
                await websocket.close()
                return call, lasted
            finally:
                pbx.close()

        call, lasted = run(scenario())
        assert call.bye_from_engine and 2.0 <= lasted < 5.0
        ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
        assert ended["hangup_reason"] == "max_call_duration"
    finally:
        engine.stop()


def test_receptionist_without_speech_recognition_falls_back_to_dtmf(tmp_path, trunk, monkeypatch):  # noqa: F811
    import telephony.receptionist.asr as asr

    def broken_model():
        raise RuntimeError("acoustic model missing")

    monkeypatch.setattr(asr, "default_model", broken_model)
    engine = engine_for(tmp_path, agent_mode="receptionist")
    try:

        async def scenario():
            pbx = await registered_pbx(engine)
            try:
                call = await pbx.call(DID)
                await asyncio.sleep(0.3)
                await key(call, "0")  # 0 → the agent's fallback extension
                refer = await pbx.wait_for("REFER")
                await asyncio.wait_for(call.ended.wait(), 5)
                return refer
            finally:
                pbx.close()

        refer = run(scenario())
        assert refer.headers.get("Refer-To") == "<sip:100@pbx.acme.test>"
        assert engine.engine.calls.agents._asr_ready is False
        ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
        assert ended["understanding"]["method"] == "operator"
    finally:
        engine.stop()
