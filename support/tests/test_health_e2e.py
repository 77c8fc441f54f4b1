"""Trunk health the whole way: a PBX (`PbxPeer`) registers and calls through a real engine on
127.0.0.1, the engine's events go through Celery (Redis) to a worker process writing
PostgreSQL, and the health page and /metrics tell what happened:

- a call for a number that is not one of the trunk's DIDs (404) → the diagnosis names the number;
- a transfer the extension refuses (NOTIFY 486) → "Transfer failed … 486";
- a transfer the PBX completes (NOTIFY 200) → "Transferred".

The worker consumes a queue of its own (`private_celery_worker`), so concurrent test runs
sharing the broker never take each other's tasks.
"""

from __future__ import annotations

import asyncio

import pytest

from calls.models import Call, CallOutcome
from telephony.calls import CallSettings
from telephony.calls.pbx_peer import PbxPeer, TransferScript
from telephony.config import load_config_closing_connection
from telephony.tests.support import processes
from telephony.tests.support.engine_runner import EngineThread
from telephony.tests.test_calls_e2e import DID, PASSWORD, key, run, trunk, wait_for  # noqa: F401
from trunks.config_version import config_version
from trunks.models import TrunkEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

UNKNOWN_NUMBER = "+27115559999"
TOKEN = "metrics-test-token-e2e"


@pytest.fixture
def engine(tmp_path, trunk):  # noqa: F811
    with processes.private_celery_worker(tmp_path / "worker.log"):
        thread = EngineThread(
            tmp_path,
            load=load_config_closing_connection,
            read_version=config_version,
            tls=False,
            celery=True,  # the engine's own sink: record_engine_events.delay per batch
            settings={"calls": CallSettings(agent_mode="dtmf", rtp_port_min=34000, rtp_port_max=34999)},
        ).start()
        yield thread
        thread.stop()


def test_calls_and_unknown_dids_reach_the_health_page_and_metrics(
    engine,
    trunk,  # noqa: F811
    owner_client,
    client,
    settings,
    tmp_path,  # noqa: F811
):
    async def scenario():
        pbx = await PbxPeer(engine.udp, transfer=TransferScript(notify=(100, 180, 486))).start()
        try:
            assert await pbx.register("calls0001", PASSWORD) == 200
            assert (await pbx.call(UNKNOWN_NUMBER)).response.status == 404
            refused = await pbx.call(DID)
            await asyncio.sleep(0.3)  # the first message starts
            await key(refused, "101")
            await pbx.wait_for("REFER")
            await asyncio.sleep(0.5)  # NOTIFY 486 reaches the engine; the caller is still there
            await pbx.bye(refused)
            pbx.transfer = TransferScript()  # 202, NOTIFY 100 / 180 / 200
            completed = await pbx.call(DID)
            await asyncio.sleep(0.3)
            await key(completed, "102")
            await asyncio.wait_for(completed.ended.wait(), 10)  # our BYE once the PBX took the caller
        finally:
            pbx.close()

    run(scenario(), timeout=60)

    def recorded():
        calls = Call.objects.filter(trunk=trunk, ended_at__isnull=False)
        routed = TrunkEvent.objects.filter(trunk=trunk, kind="call_not_routed").exists()
        return calls.count() == 2 and routed

    assert wait_for(recorded, timeout=60), (tmp_path / "worker.log").read_text()[-3000:]
    outcomes = dict(Call.objects.filter(trunk=trunk).values_list("transfer_target", "outcome"))
    assert outcomes == {"101": CallOutcome.TRANSFER_FAILED, "102": CallOutcome.TRANSFERRED}

    response = owner_client.get(f"/trunks/{trunk.pk}/health/")
    html = response.content.decode()
    assert "to 101: failed, the PBX answered 486" in html and "(the extension is busy)" in html
    assert "to 102: accepted by the PBX (200" in html
    findings = {f.code: f.words for f in response.context["findings"]}
    assert findings["did_not_on_trunk"].startswith(f"Calls arrive for {UNKNOWN_NUMBER}, which is not a DID")
    assert "486" in findings["extension_rejected"]

    settings.METRICS_TOKEN = TOKEN
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert 'smartalex_transfers{outcome="accepted"} 1.0' in text
    assert 'smartalex_transfers{outcome="refused"} 1.0' in text
    assert 'smartalex_calls{outcome="transfer_failed"} 1.0' in text
    assert 'smartalex_calls{outcome="transferred"} 1.0' in text


def test_the_engine_reports_each_unknown_number_once_a_minute(tmp_path, trunk):  # noqa: F811
    from telephony.tests.test_calls_e2e import events_of, start_engine

    engine = start_engine(tmp_path, rtp_port_min=34000, rtp_port_max=34999)

    async def scenario():
        pbx = await PbxPeer(engine.udp).start()
        try:
            assert await pbx.register("calls0001", PASSWORD) == 200
            return [
                (await pbx.call(n)).response.status for n in (UNKNOWN_NUMBER, UNKNOWN_NUMBER, "+27115558888")
            ]
        finally:
            pbx.close()

    try:
        assert run(scenario()) == [404, 404, 404]
        reported = wait_for(lambda: len(events_of(engine, "CallForUnknownDid")) >= 2)
    finally:
        engine.stop()
    assert reported
    events = events_of(engine, "CallForUnknownDid")
    assert [e["number"] for e in events] == [UNKNOWN_NUMBER, "+27115558888"]  # the repeat is not
    assert {e["trunk_id"] for e in events} == {trunk.pk} and events[0]["source"].startswith("127.0.0.1:")
    assert not events_of(engine, "CallStarted")  # no call record for a number the trunk does not own
