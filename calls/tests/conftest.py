"""Call records of two workspaces, made the way the worker makes them: from engine events."""

from __future__ import annotations

import uuid

import pytest

from calls.models import Call
from calls.services import call_events_apply
from telephony import events as ev
from trunks.services import TrunkSettings, trunk_create

T0 = 1_790_000_000.0


def make_trunk(tenant, name="Main PBX"):
    trunk, _ = trunk_create(tenant=tenant, values=TrunkSettings(name=name, pbx_domain="pbx.acme.test"))
    return trunk


def record_call(
    trunk, *, caller="+27825550123", outcome="transferred", transfer_status=200, target="102"
) -> Call:
    ref = uuid.uuid4().hex
    ids = {"call_ref": ref, "tenant_id": trunk.tenant_id, "trunk_id": trunk.pk}
    events = [
        ev.CallStarted(
            **ids,
            sip_call_id=f"{ref}@pbx",
            did="+27115550100",
            caller=caller,
            caller_name="Caller",
            agent_id=None,
            at=T0,
        ),
        ev.CallAnswered(**ids, codec="PCMU", at=T0 + 0.05),
    ]
    if target:
        events.append(
            ev.CallTransferred(
                **ids,
                target=target,
                method="refer",
                accepted=transfer_status < 300,
                status=transfer_status,
                reason="",
                requested_at=T0 + 3.0,
                sent_at=T0 + 3.02,
                ringing_at=T0 + 3.2,
                at=T0 + 3.3,
            )
        )
    events.append(
        ev.CallEnded(**ids, outcome=outcome, sip_status=None, reason="", dtmf=target or "",
                     understanding={"text": "John Smith please", "extension": target, "method": "speech",
                                    "confidence": 0.93, "turns": [], "decision_seconds": 0.12},
                     hangup_reason="", at=T0 + 4.0)
    )  # fmt: skip
    call_events_apply(events=events)
    return Call.objects.get(call_ref=ref)


@pytest.fixture
def trunk(tenant):
    return make_trunk(tenant)


@pytest.fixture
def other_trunk(other_tenant):
    return make_trunk(other_tenant, name="Other PBX")


@pytest.fixture
def call(trunk) -> Call:
    return record_call(trunk)


@pytest.fixture
def other_call(other_trunk) -> Call:
    return record_call(other_trunk, caller="+4420700000")
