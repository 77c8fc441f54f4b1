"""Calls end to end: a PBX (our own small UA, `telephony.calls.pbx_peer`) registers and calls a
DID through the engine on 127.0.0.1, with the trunk, DID, agent and directory in PostgreSQL.

The DTMF agent keeps these fast; the receptionist's own path is in test_calls_receptionist.py.
Events are checked in the engine's in-memory list; test_calls_records.py takes the Celery way.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from smartalex.agents.models import Agent
from telephony.calls import CallSettings
from telephony.calls.pbx_peer import PbxPeer, TransferScript
from telephony.config import load_config_closing_connection
from telephony.media.codecs import codec_by_name
from telephony.receptionist.digits import INTER_DIGIT_TIMEOUT
from telephony.tests.support.engine_runner import EngineThread
from trunks.config_version import config_version
from trunks.models import SipTrunk
from trunks.services import TrunkSettings, did_add, trunk_create, trunk_suspend

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "a-very-long-pass-0001"
DID = "+27115550100"


@pytest.fixture
def trunk(tenant) -> SipTrunk:
    from extensions.rules import ExtensionValues
    from extensions.services import extension_create

    trunk, _ = trunk_create(
        tenant=tenant,
        values=TrunkSettings(name="Main PBX", pbx_domain="pbx.acme.test"),
        username="calls0001",
        password=PASSWORD,
    )
    did_add(trunk=trunk, number=DID)
    Agent.objects.create(
        tenant=tenant,
        name="Reception",
        first_message="Hello, Acme Dental.",
        fallback_extension="100",
        trunk=trunk,
    )
    for number, name, owner in (
        ("100", "Reception", ""),
        ("101", "Sales", "Sarah Jones"),
        ("102", "Support", "John Smith"),
    ):
        extension_create(trunk=trunk, values=ExtensionValues(number=number, display_name=name, owner=owner))
    return trunk


def start_engine(tmp_path, *, celery: bool = False, **calls) -> EngineThread:
    """An engine on the test database, with the DTMF agent unless a test asks otherwise."""
    settings = CallSettings(**{"agent_mode": "dtmf", "rtp_port_min": 31000, "rtp_port_max": 31999, **calls})
    return EngineThread(
        tmp_path,
        load=load_config_closing_connection,
        read_version=config_version,
        tls=False,
        celery=celery,
        settings={"calls": settings},
    ).start()


@pytest.fixture
def engine(tmp_path, trunk):
    thread = start_engine(tmp_path)
    yield thread
    thread.stop()


def run(coroutine, timeout: float = 30):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def scrape(engine: EngineThread) -> str:
    """What Prometheus reads from the engine's /metrics."""
    from prometheus_client import generate_latest

    from telephony.metrics import engine_registry

    return generate_latest(engine_registry(engine.engine)).decode()


def events_of(engine: EngineThread, kind: str) -> list[dict]:
    return [e for e in engine.events if e["type"] == kind]


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    return predicate()


def in_thread(function, **kwargs):
    """A database write from inside the test's event loop: in a thread that closes its connection."""
    from django.db import connections

    try:
        return function(**kwargs)
    finally:
        connections.close_all()


async def registered_pbx(engine: EngineThread, transfer: TransferScript | None = None) -> PbxPeer:
    pbx = await PbxPeer(engine.udp, transfer=transfer).start()
    assert await pbx.register("calls0001", PASSWORD) == 200
    return pbx


async def key(call, digits: str) -> None:
    for digit in digits:
        await call.media.send_dtmf(digit)
        await asyncio.sleep(0.05)


def test_dtmf_extension_is_transferred_with_refer_and_pai(engine):
    answered = []
    engine.engine.calls.on_answered.append(answered.append)

    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            started = time.monotonic()
            call = await pbx.call(DID)
            answered_in = time.monotonic() - started
            assert call.response.status == 200, call.response
            assert 100 in pbx.provisional(call)  # 100 Trying before the 200
            await asyncio.sleep(0.3)  # the first message starts
            await key(call, "102")
            refer = await pbx.wait_for("REFER")
            await asyncio.wait_for(call.ended.wait(), 5)  # our BYE after NOTIFY 200
            return answered_in, refer, call
        finally:
            pbx.close()

    answered_in, refer, call = run(scenario())
    assert answered_in < 2.0  # no ring-delay (the agent answers at once)
    times = answered[0].times  # the engine's own clock: last digit in, REFER out
    # A full extension transfers at once, without waiting out the inter-digit timeout.
    assert 0 <= times.refer_sent_at - times.last_digit_at < INTER_DIGIT_TIMEOUT / 4
    assert refer.headers.get("Refer-To") == "<sip:102@pbx.acme.test>"
    assert "sip:+27825550123@pbx.acme.test" in refer.headers.get("P-Asserted-Identity")
    assert refer.headers.get("Referred-By")
    assert call.bye_from_engine
    ended = wait_for(lambda: events_of(engine, "CallEnded"))
    assert ended[0]["outcome"] == "transferred" and ended[0]["dtmf"] == "102"
    transferred = events_of(engine, "CallTransferred")[0]
    assert transferred["accepted"] and transferred["method"] == "refer" and transferred["status"] == 200
    assert transferred["ringing_at"] >= transferred["sent_at"] >= transferred["requested_at"]
    started = events_of(engine, "CallStarted")[0]
    assert started["did"] == DID and started["caller"] == "+27825550123"
    assert events_of(engine, "CallAnswered")[0]["codec"] == "PCMU"
    traces = wait_for(lambda: [e for e in events_of(engine, "SipTraceRecorded") if e["kind"] == "call"])
    texts = [m["text"].split("\r\n", 1)[0] for m in traces[0]["messages"]]
    assert any(t.startswith("REFER ") for t in texts) and any(t.startswith("NOTIFY ") for t in texts)
    assert 'smartalex_sip_transfers_total{outcome="accepted"} 1.0' in scrape(engine)


def test_refused_transfer_is_told_to_the_agent_and_the_call_goes_on(engine):
    async def scenario():
        pbx = await registered_pbx(engine, TransferScript(notify=(100, 486)))
        try:
            call = await pbx.call(DID)
            await key(call, "101")
            await pbx.wait_for("REFER")
            await asyncio.sleep(0.5)
            assert not call.ended.is_set()  # the caller is still with the agent
            await pbx.bye(call)
        finally:
            pbx.close()

    run(scenario())
    transferred = wait_for(lambda: events_of(engine, "CallTransferred"))[0]
    assert not transferred["accepted"] and transferred["status"] == 486
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    assert ended["outcome"] == "caller_hung_up"
    assert 'smartalex_sip_transfers_total{outcome="refused"} 1.0' in scrape(engine)
    assert 'smartalex_sip_transfers_total{outcome="accepted"} 0.0' in scrape(engine)


def test_refer_not_allowed_falls_back_to_a_bridged_transfer(engine):
    async def scenario():
        pbx = await registered_pbx(engine, TransferScript(refer_status=405))
        try:
            call = await pbx.call(DID)
            await key(call, "102")
            invite = await pbx.wait_for("INVITE")
            await asyncio.sleep(0.5)
            leg = pbx.bridged[0]
            # Audio from the caller reaches the extension through the relay, and back.
            call.media.play(bytes(3200))
            leg.media.play(bytes(3200))
            await asyncio.sleep(0.5)
            relayed = (leg.media.stats.packets_received, call.media.stats.packets_received)
            await pbx.bye(call)
            await asyncio.sleep(0.3)
            return invite, relayed, leg
        finally:
            pbx.close()

    invite, relayed, leg = run(scenario())
    assert str(invite.uri) == "sip:102@pbx.acme.test"
    assert "+27825550123" in invite.headers.get("P-Asserted-Identity")
    assert relayed[0] > 10 and relayed[1] > 10
    assert leg.media.closed  # our BYE ended the extension's leg when the caller hung up
    transferred = wait_for(lambda: events_of(engine, "CallTransferred"))[0]
    assert transferred["accepted"] and transferred["method"] == "bridge"
    assert wait_for(lambda: events_of(engine, "CallEnded"))[0]["outcome"] == "transferred"


def test_unknown_did_is_404_and_suspended_trunk_403(engine, trunk):
    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            unknown = (await pbx.call("+27115559999")).response.status
            await asyncio.to_thread(in_thread, trunk_suspend, trunk=trunk)
            await asyncio.to_thread(wait_for, lambda: engine.engine.config.trunks[trunk.pk].suspended)
            suspended = (await pbx.call(DID)).response
            return unknown, suspended
        finally:
            pbx.close()

    unknown, suspended = run(scenario())
    assert unknown == 404
    assert suspended.status == 403 and suspended.reason == "Trunk suspended"
    ended = wait_for(lambda: events_of(engine, "CallEnded"))
    assert [e["sip_status"] for e in ended] == [403]  # an unknown number is no call of this trunk


def test_no_linked_agent_is_480_with_a_reason(engine, trunk):
    Agent.objects.filter(trunk=trunk).update(trunk=None)
    from trunks.config_version import config_changed

    config_changed()
    assert wait_for(lambda: engine.engine.config.trunks[trunk.pk].agent is None)

    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            return (await pbx.call(DID)).response
        finally:
            pbx.close()

    response = run(scenario())
    assert response.status == 480 and response.reason == "No agent linked to this trunk"
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    assert ended["outcome"] == "rejected" and ended["sip_status"] == 480


def test_trunk_limit_gives_503_with_retry_after(engine, trunk):
    SipTrunk.objects.filter(pk=trunk.pk).update(max_concurrent_calls=1)
    from trunks.config_version import config_changed

    config_changed()
    assert wait_for(lambda: engine.engine.config.trunks[trunk.pk].max_concurrent_calls == 1)

    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            first = await pbx.call(DID)
            second = await pbx.call(DID)
            await pbx.bye(first)
            return first.response, second.response
        finally:
            pbx.close()

    first, second = run(scenario())
    assert first.status == 200
    assert second.status == 503 and second.headers.get("Retry-After") == "5"


def test_workspace_limit_gives_503(engine, trunk, tenant):
    tenant.max_concurrent_calls = 1
    tenant.save()
    from trunks.config_version import config_changed

    config_changed()
    assert wait_for(lambda: engine.engine.calls.tenant_limits.get(tenant.pk) == 1)

    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            first = await pbx.call(DID)
            second = await pbx.call(DID)
            await pbx.bye(first)
            return second.response
        finally:
            pbx.close()

    response = run(scenario())
    assert response.status == 503 and response.reason == "Workspace call limit reached"


@pytest.mark.parametrize(
    "codecs, expected", [(("G722",), "G722"), (("PCMA",), "PCMA"), (("PCMA", "PCMU"), "PCMU")]
)
def test_codec_follows_the_trunk_preference(engine, codecs, expected):
    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            call = await pbx.call(DID, codecs=codecs)
            if call.media.codec.name != expected:  # our offer's first codec was not chosen
                call.media.close()
                call.media = None
            await asyncio.sleep(1.0)
            body = call.response.body.decode()
            await pbx.bye(call)
            return body
        finally:
            pbx.close()

    body = run(scenario())
    payload = codec_by_name(expected).payload_type
    assert "m=audio " in body and f"RTP/AVP {payload} " in body
    assert wait_for(lambda: events_of(engine, "CallAnswered"))[0]["codec"] == expected


def test_greeting_audio_reaches_the_caller(engine):
    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            call = await pbx.call(DID)
            await asyncio.sleep(1.5)
            frames = []
            while not call.media.caller_audio.empty():
                frames.append(call.media.caller_audio.get_nowait())
            await pbx.bye(call)
            return frames
        finally:
            pbx.close()

    frames = run(scenario())
    loud = [
        f
        for f in frames
        if max(abs(int.from_bytes(f[i : i + 2], "little", signed=True)) for i in range(0, len(f), 2)) > 1000
    ]
    assert len(frames) > 40 and len(loud) > 10  # 20 ms frames, and the first message is speech


def test_cancel_before_answer_is_487(tmp_path, trunk):
    thread = start_engine(tmp_path, answer_delay=1.0)
    try:

        async def scenario():
            pbx = await registered_pbx(thread)
            try:
                call_task = asyncio.create_task(pbx.call(DID))
                await asyncio.sleep(0.3)
                call_id = next(iter(pbx.calls))
                await pbx.cancel_after(call_id, 0)
                call = await call_task
                return call, pbx.provisional(call)
            finally:
                pbx.close()

        call, provisional = run(scenario())
        assert call.response.status == 487 and 180 in provisional
        ended = wait_for(lambda: events_of(thread, "CallEnded"))[0]
        assert ended["outcome"] == "cancelled" and ended["sip_status"] == 487
    finally:
        thread.stop()


def test_hold_reinvite_info_dtmf_and_in_dialog_options(engine):
    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            call = await pbx.call(DID)
            await asyncio.sleep(0.3)
            hold = await pbx.reinvite(call, hold=True)
            await asyncio.sleep(0.1)  # packets already in flight
            before = call.media.stats.packets_received
            await asyncio.sleep(0.5)
            during_hold = call.media.stats.packets_received - before
            unhold = await pbx.reinvite(call, hold=False)
            before = call.media.stats.packets_received
            await asyncio.sleep(0.5)
            after_unhold = call.media.stats.packets_received - before
            info = await pbx.info_digit(call, "1")
            options = await pbx.request(call.dialog.create_request("OPTIONS", via=pbx._via()))
            await asyncio.sleep(0.1)
            await pbx.bye(call)
            return hold, unhold, info, options, during_hold, after_unhold
        finally:
            pbx.close()

    hold, unhold, info, options, during_hold, after_unhold = run(scenario())
    assert hold.status == 200 and "a=recvonly" in hold.body.decode()
    assert unhold.status == 200 and "a=sendrecv" in unhold.body.decode()
    # On hold the engine sends nothing (RFC 3264 §8.4); after unhold its 20 ms stream resumes.
    assert during_hold == 0 and after_unhold >= 10
    assert info.status == 200 and options.status == 200
    assert wait_for(lambda: events_of(engine, "CallEnded"))[0]["dtmf"] == "1"


def test_a_reinvite_from_the_bridged_extension_is_answered_for_that_leg(engine):
    from telephony.sip.sdp import parse_sdp

    async def scenario():
        pbx = await registered_pbx(engine, TransferScript(refer_status=405))
        try:
            call = await pbx.call(DID)
            await key(call, "102")
            bridge_invite = await pbx.wait_for("INVITE")
            await asyncio.sleep(0.3)
            leg = pbx.bridged[0]
            hold = await pbx.reinvite(leg, hold=True)
            await pbx.bye(call)
            return call, bridge_invite, hold
        finally:
            pbx.close()

    call, bridge_invite, hold = run(scenario())
    assert hold.status == 200
    answer = parse_sdp(hold.body).media[0]
    offered = parse_sdp(bridge_invite.body)
    # Our port and session for the extension's leg, not the caller's.
    assert answer.port == offered.media[0].port != call.media.remote[1]
    assert parse_sdp(hold.body).origin.session_id == offered.origin.session_id
    assert "a=recvonly" in hold.body.decode()


def test_unregistered_pbx_is_challenged_then_authenticated(engine):
    async def scenario():
        pbx = await PbxPeer(engine.udp).start()
        try:
            wrong = await pbx.call(DID, credentials=("calls0001", "wrong-password-xyz"))
            right = await pbx.call(DID, credentials=("calls0001", PASSWORD))
            if right.response.status == 200:
                await pbx.bye(right)
            return wrong.response.status, right.response.status
        finally:
            pbx.close()

    assert run(scenario()) == (403, 200)


def test_offer_without_a_codec_we_take_is_488(engine):
    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            return (await pbx.call(DID, codecs=("G729",), media_port=9)).response
        finally:
            pbx.close()

    response = run(scenario())
    assert response.status == 488
    ended = wait_for(lambda: events_of(engine, "CallEnded"))[0]
    assert ended["outcome"] == "rejected" and ended["sip_status"] == 488
    assert not engine.engine.calls.calls and sum(engine.engine.calls.trunk_calls.values()) == 0
