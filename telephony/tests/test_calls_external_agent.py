"""An outside voice runtime takes a call over the WebSocket: audio and DTMF in, speech and a
transfer out; keys of another workspace, unknown keys and read-only keys are refused."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

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


@pytest.fixture
def engine(tmp_path, trunk):  # noqa: F811
    thread = start_engine(tmp_path, agent_ws_port=0, rtp_port_min=34000, rtp_port_max=34999)
    yield thread
    thread.stop()


def ws_url(engine) -> str:
    return f"ws://127.0.0.1:{engine.engine.calls.external.port}"


async def hello(engine, raw_key: str, trunk_id: int):
    websocket = await connect(ws_url(engine))
    await websocket.send(json.dumps({"type": "hello", "api_key": raw_key, "trunk_id": trunk_id}))
    return websocket, json.loads(await asyncio.wait_for(websocket.recv(), 5))


def test_external_runtime_hears_the_caller_speaks_and_transfers(engine, trunk):  # noqa: F811
    _, raw = api_key_create(tenant=trunk.tenant, name="runtime", role=Role.ADMIN)

    async def scenario():
        websocket, ready = await hello(engine, raw, trunk.pk)
        assert ready == {"type": "ready", "trunk_id": trunk.pk}
        pbx = await registered_pbx(engine)
        try:
            call = await pbx.call(DID)
            offered = json.loads(await asyncio.wait_for(websocket.recv(), 5))
            frames = 0
            while frames < 10:  # the caller's audio, 20 ms PCM frames
                message = await asyncio.wait_for(websocket.recv(), 5)
                if isinstance(message, bytes):
                    assert len(message) == 320
                    frames += 1
            await websocket.send(json.dumps({"type": "say", "text": "Hello from outside"}))
            await websocket.send(bytes(320) * 5)
            await key(call, "5")
            digit = None
            while digit is None:
                message = await asyncio.wait_for(websocket.recv(), 5)
                if isinstance(message, str) and json.loads(message)["type"] == "dtmf":
                    digit = json.loads(message)["digit"]
            await websocket.send(json.dumps({"type": "transfer", "extension": "102"}))
            refer = await pbx.wait_for("REFER")
            results = []
            while not results or results[-1]["type"] != "hangup":
                message = await asyncio.wait_for(websocket.recv(), 5)
                if isinstance(message, str):
                    results.append(json.loads(message))
            await websocket.close()
            return offered, digit, refer, results
        finally:
            pbx.close()

    offered, digit, refer, results = run(scenario())
    assert offered["type"] == "call" and offered["did"] == DID and offered["sample_rate"] == 8000
    assert offered["caller"] == "+27825550123"
    assert digit == "5"
    assert refer.headers.get("Refer-To") == "<sip:102@pbx.acme.test>"
    transfer = next(r for r in results if r["type"] == "transfer")
    assert transfer["accepted"] and transfer["status"] == 200
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    assert ended["outcome"] == "transferred" and ended["understanding"]["method"] == "external"


@pytest.mark.parametrize("case", ["unknown_key", "other_workspace_trunk", "viewer_key", "no_hello"])
def test_refused_runtimes_get_no_calls(engine, trunk, other_tenant, case):  # noqa: F811
    from trunks.services import TrunkSettings, trunk_create

    other_trunk, _ = trunk_create(
        tenant=other_tenant, values=TrunkSettings(name="Other", pbx_domain="o.test")
    )
    wait_for(lambda: other_trunk.pk in engine.engine.config.trunks)
    _, admin = api_key_create(tenant=trunk.tenant, name="admin", role=Role.ADMIN)
    _, viewer = api_key_create(tenant=trunk.tenant, name="viewer", role=Role.VIEWER)
    raw, trunk_id = {
        "unknown_key": ("sa_nope_nope", trunk.pk),
        "other_workspace_trunk": (admin, other_trunk.pk),
        "viewer_key": (viewer, trunk.pk),
        "no_hello": ("", 0),
    }[case]

    async def scenario():
        websocket = await connect(ws_url(engine))
        await websocket.send(
            "garbage"
            if case == "no_hello"
            else json.dumps({"type": "hello", "api_key": raw, "trunk_id": trunk_id})
        )
        answer = json.loads(await asyncio.wait_for(websocket.recv(), 5))
        await asyncio.sleep(0.1)
        pbx = await registered_pbx(engine)
        try:
            call = await pbx.call(DID)
            await pbx.bye(call)
        finally:
            pbx.close()
        return answer

    answer = run(scenario())
    assert answer["type"] == "error"
    assert engine.engine.calls.external._lines == []
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    assert ended["understanding"]["method"] != "external"  # the built-in agent took the call
