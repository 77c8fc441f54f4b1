"""A call's record the real way: engine → Celery (Redis) → worker process → PostgreSQL, and the
call page shows it with its outcome."""

from __future__ import annotations

import asyncio

import pytest
from django.urls import reverse

from calls.models import Call, CallOutcome
from telephony.tests.support import processes
from telephony.tests.test_calls_e2e import DID, key, registered_pbx, run, start_engine, trunk, wait_for  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker(tmp_path):
    with processes.private_celery_worker(tmp_path / "worker.log") as process:
        yield process


@pytest.fixture
def engine(tmp_path, worker, trunk):  # noqa: F811
    thread = start_engine(tmp_path, celery=True, rtp_port_min=33000, rtp_port_max=33999)
    yield thread
    thread.stop()


def test_transferred_call_is_recorded_by_the_worker_and_shown(engine, tenant, owner_client, tmp_path):
    async def scenario():
        pbx = await registered_pbx(engine)
        try:
            call = await pbx.call(DID)
            await asyncio.sleep(0.3)
            await key(call, "102")
            await asyncio.wait_for(call.ended.wait(), 10)
        finally:
            pbx.close()

    run(scenario())
    record = wait_for(lambda: Call.objects.filter(outcome=CallOutcome.TRANSFERRED).first(), timeout=20)
    assert record is not None, (tmp_path / "worker.log").read_text()[-3000:]
    assert record.tenant_id == tenant.pk and record.did == DID and record.caller == "+27825550123"
    assert record.transfer_target == "102" and record.transfer_status == 200 and record.dtmf == "102"
    assert record.codec == "PCMU" and record.answered_at and record.ended_at
    assert 0 <= record.refer_delay_ms < 1000
    page = owner_client.get(reverse("calls:detail", args=[record.pk])).content.decode()
    assert "Transferred" in page and "102" in page
    from support.models import SipTrace

    assert wait_for(
        lambda: SipTrace.objects.filter(call_id=record.sip_call_id, kind="call").exists(), timeout=10
    )
    page = owner_client.get(reverse("calls:detail", args=[record.pk])).content.decode()
    assert 'id="sip-trace"' in page
