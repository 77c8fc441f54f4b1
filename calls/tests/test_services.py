import uuid

import pytest

from calls.models import Call, CallOutcome
from calls.services import call_events_apply
from calls.tests.conftest import T0, record_call
from telephony import events as ev

pytestmark = pytest.mark.django_db


def test_a_transferred_call_has_its_timings_and_understanding(call):
    assert call.outcome == CallOutcome.TRANSFERRED and call.codec == "PCMU"
    assert call.transfer_target == "102" and call.transfer_status == 200 and call.transfer_method == "refer"
    assert call.refer_delay_ms == 20 and call.ringing_delay_ms == 200
    assert call.duration_seconds == 4.0
    assert call.understanding["text"] == "John Smith please"
    assert call.sip_call_id.endswith("@pbx") and call.did == "+27115550100"


def test_a_failed_last_transfer_makes_the_outcome_transfer_failed(trunk):
    call = record_call(trunk, outcome="caller_hung_up", transfer_status=486)
    assert call.outcome == CallOutcome.TRANSFER_FAILED and call.transfer_status == 486


def test_events_applied_twice_or_out_of_order_give_the_same_record(trunk):
    ref = uuid.uuid4().hex
    ids = {"call_ref": ref, "tenant_id": trunk.tenant_id, "trunk_id": trunk.pk}
    ended = ev.CallEnded(**ids, outcome="rejected", sip_status=503, reason="Trunk call limit reached", dtmf="",
                         understanding=None, hangup_reason="", at=T0 + 0.01)  # fmt: skip
    started = ev.CallStarted(**ids, sip_call_id="x@pbx", did="+27115550100", caller="+2782", caller_name="",
                             agent_id=None, at=T0)  # fmt: skip
    assert call_events_apply(events=[ended]) == 1  # the end first, from a later batch
    call_events_apply(events=[started, ended])
    call = Call.objects.get(call_ref=ref)
    assert Call.objects.filter(call_ref=ref).count() == 1
    assert call.outcome == CallOutcome.REJECTED and call.sip_status == 503 and call.caller == "+2782"


def test_events_of_a_trunk_of_another_workspace_are_dropped(trunk, other_tenant):
    event = ev.CallAnswered(call_ref=uuid.uuid4().hex, tenant_id=other_tenant.pk, trunk_id=trunk.pk, codec="PCMU",
                            at=T0)  # fmt: skip
    call_events_apply(events=[event])
    assert not Call.objects.exists()


def _transfer(ids, *, status, accepted, requested_at):
    return ev.CallTransferred(**ids, target="101", method="refer", accepted=accepted, status=status,
                              reason="Busy Here" if status == 486 else "OK", requested_at=requested_at,
                              sent_at=requested_at + 0.02, ringing_at=None, at=requested_at + 0.5)  # fmt: skip


def test_a_failed_transfer_applied_after_the_end_still_makes_it_transfer_failed(trunk):
    ref = uuid.uuid4().hex
    ids = {"call_ref": ref, "tenant_id": trunk.tenant_id, "trunk_id": trunk.pk}
    ended = ev.CallEnded(**ids, outcome="caller_hung_up", sip_status=None, reason="", dtmf="101",
                         understanding=None, hangup_reason="", at=T0 + 9)  # fmt: skip
    call_events_apply(events=[ended])  # a second worker applied the later batch first
    call_events_apply(events=[_transfer(ids, status=486, accepted=False, requested_at=T0 + 3)])
    call = Call.objects.get(call_ref=ref)
    assert call.outcome == CallOutcome.TRANSFER_FAILED and call.transfer_status == 486


def test_an_earlier_transfer_attempt_applied_late_does_not_replace_the_last(trunk):
    ref = uuid.uuid4().hex
    ids = {"call_ref": ref, "tenant_id": trunk.tenant_id, "trunk_id": trunk.pk}
    call_events_apply(events=[_transfer(ids, status=200, accepted=True, requested_at=T0 + 6)])
    call_events_apply(events=[_transfer(ids, status=486, accepted=False, requested_at=T0 + 3)])
    assert Call.objects.get(call_ref=ref).transfer_status == 200
