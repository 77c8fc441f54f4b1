"""Trunk health fed the way production feeds it: engine events through the worker's task
(`telephony.tasks.record_engine_events`, run in-process here; test_health_e2e.py takes the real
engine → Celery → worker way). Recent calls with their outcomes in words, the diagnosis findings
of the troubleshooting guide, and the portal's /metrics counts of calls and transfers."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from smartalex.agents.models import Agent
from telephony import events as ev
from telephony.tasks import record_engine_events
from trunks.services import did_add

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-health"


def apply(*events: ev.EngineEvent) -> None:
    """What the worker runs for one batch: the events as the engine encoded them."""
    record_engine_events([ev.encode(e) for e in events])


def call_events(
    trunk,
    *,
    at: float,
    caller: str,
    target: str = "",
    status: int | None = None,
    reason: str = "",
    ended: str = "answered",
    rejected: int | None = None,
) -> list[ev.EngineEvent]:
    """One call's events as the engine emits them (telephony/calls/handler.py, call.py, transfer.py)."""
    ids = {"call_ref": uuid.uuid4().hex, "tenant_id": trunk.tenant_id, "trunk_id": trunk.pk}
    events: list[ev.EngineEvent] = [
        ev.CallStarted(**ids, sip_call_id=f"{ids['call_ref']}@pbx", did="+27215550123", caller=caller,
                       caller_name="", agent_id=None, at=at),
    ]  # fmt: skip
    if rejected is None:
        events.append(ev.CallAnswered(**ids, codec="PCMU", at=at + 0.05))
    if target:
        events.append(
            ev.CallTransferred(**ids, target=target, method="refer", accepted=status is not None and status < 300,
                               status=status, reason=reason, requested_at=at + 3, sent_at=at + 3.02,
                               ringing_at=at + 3.2, at=at + 3.5)
        )  # fmt: skip
    events.append(
        ev.CallEnded(**ids, outcome="rejected" if rejected else ended, sip_status=rejected,
                     reason="No agent linked to this trunk" if rejected else "", dtmf=target,
                     understanding=None, hangup_reason="", at=at + 6)
    )  # fmt: skip
    return events


@pytest.fixture
def calls(trunk, other_trunk):
    now = time.time() - 600
    apply(
        *call_events(trunk, at=now, caller="+27825550101"),
        *call_events(trunk, at=now + 10, caller="+27825550102", target="102", status=200, reason="OK",
                     ended="transferred"),
        *call_events(trunk, at=now + 20, caller="+27825550103", target="101", status=486, reason="Busy Here",
                     ended="caller_hung_up"),
        *call_events(trunk, at=now + 30, caller="+27825550104", target="103", status=603, reason="Decline"),
        *call_events(trunk, at=now + 40, caller="+27825550105", target="104", status=408,
                     reason="No NOTIFY from the PBX"),
        *call_events(trunk, at=now + 50, caller="+27825550106", rejected=480),
        *call_events(other_trunk, at=now + 5, caller="+4420700009", target="200", status=200, ended="transferred"),
    )  # fmt: skip


def rows(html: str) -> list[str]:
    section = html.split('id="calls"', 1)[1].split("</section>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", "<tr" + r)).strip() for r in section.split("<tr")[2:]]


def test_owner_health_lists_recent_calls_with_outcomes_in_words(owner_client, trunk, calls):
    html = owner_client.get(f"/trunks/{trunk.pk}/health/").content.decode()
    listed = rows(html)
    assert len(listed) == 6  # not the other workspace's call
    newest, *_, oldest = listed
    assert (
        "+27825550106" in newest
        and "Rejected: SmartAlex answered 480 No agent linked to this trunk" in newest
    )
    assert "+27825550101" in oldest and "Answered (ended by the agent)" in oldest
    by_caller = {r.split()[2]: r for r in listed}  # "date time caller ..."
    assert "Transferred" in by_caller["+27825550102"]
    assert "to 102: accepted by the PBX (200 OK)" in by_caller["+27825550102"]
    assert "Transfer failed" in by_caller["+27825550103"]
    assert (
        "to 101: failed, the PBX answered 486 Busy Here (the extension is busy)" in by_caller["+27825550103"]
    )
    assert (
        "to 103: failed, the PBX answered 603 Decline (the extension declined)" in by_caller["+27825550104"]
    )
    assert "to 104: failed, the PBX gave no final answer in time" in by_caller["+27825550105"]
    assert "+4420700009" not in html
    assert 'data-transfer="refused"' in html and 'href="/calls/' in html  # each row opens the call
    findings = {f.code: f.words for f in owner_client.get(f"/trunks/{trunk.pk}/health/").context["findings"]}
    assert "486/603" in findings["extension_rejected"]


def test_support_health_lists_the_same_calls_with_caller_numbers_masked(support_client, trunk, calls):
    html = support_client.get(f"/support/trunks/{trunk.pk}/").content.decode()
    listed = rows(html)
    assert len(listed) == 6
    assert any("+*******0103" in r and "the PBX answered 486 Busy Here" in r for r in listed)
    assert "+27825550103" not in html and 'href="/calls/' not in html


def test_portal_metrics_count_calls_and_transfers_by_outcome(client, settings, calls):
    settings.METRICS_TOKEN = TOKEN
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    # Two workspaces: 3 transferred-or-accepted… counted from the records, whoever owns them.
    assert 'smartalex_transfers{outcome="accepted"} 2.0' in text
    assert 'smartalex_transfers{outcome="refused"} 2.0' in text
    assert 'smartalex_transfers{outcome="timeout"} 1.0' in text
    assert 'smartalex_transfers{outcome="failed"} 0.0' in text
    assert 'smartalex_calls{outcome="transferred"} 2.0' in text
    assert 'smartalex_calls{outcome="transfer_failed"} 3.0' in text
    assert 'smartalex_calls{outcome="answered"} 1.0' in text
    assert 'smartalex_calls{outcome="rejected"} 1.0' in text
    assert 'smartalex_calls{outcome="cancelled"} 0.0' in text


def findings_of(client, trunk) -> dict[str, str]:
    return {f.code: f.words for f in client.get(f"/trunks/{trunk.pk}/health/").context["findings"]}


def test_a_call_for_a_number_not_on_the_trunk_is_diagnosed_in_words(owner_client, trunk):
    now = time.time()
    apply(
        ev.CallForUnknownDid(
            trunk_id=trunk.pk, number="+27215550999", source="203.0.113.10:5060", at=now - 5
        ),
        ev.CallForUnknownDid(trunk_id=trunk.pk, number="+27215550999", source="203.0.113.10:5060", at=now),
    )
    finding = findings_of(owner_client, trunk)["did_not_on_trunk"]
    assert finding.startswith("Calls arrive for +27215550999, which is not a DID of this trunk")
    history = owner_client.get(f"/trunks/{trunk.pk}/").content.decode()
    assert "Call not routed: +27215550999 is not a DID of this trunk (answered 404)" in history
    did_add(trunk=trunk, number="+27215550999")  # the fix the finding asks for clears it
    assert "did_not_on_trunk" not in findings_of(owner_client, trunk)


def test_every_finding_of_the_guide_is_fed_by_engine_events(owner_client, trunk):
    """Issue 9's list: wrong credentials, SIP ALG, transport mismatch, agent not linked,
    extension rejected (486/603), wrong PBX domain — each from what the engine reports."""
    now = time.time()
    apply(
        ev.RegisterAuthFailed(trunk_id=trunk.pk, username=trunk.auth_username, reason="wrong_password",
                              source="203.0.113.10:5060", transport="udp", user_agent="3CX", at=now - 60),
    )  # fmt: skip
    assert "wrong credentials" in findings_of(owner_client, trunk)["wrong_credentials"]
    # The registrar's own warnings: a private Via behind a public source, and TCP on a UDP trunk.
    apply(
        ev.TrunkRegistered(trunk_id=trunk.pk, contact="sip:pbx@203.0.113.10:5060", source="203.0.113.10:5060",
                           transport="tcp", user_agent="3CX", expires=300, at=now - 30,
                           warnings=("SIP ALG or NAT suspected: private address 192.168.1.20 in Contact/Via "
                                     "from public source 203.0.113.10",)),
    )  # fmt: skip
    found = findings_of(owner_client, trunk)
    assert "wrong_credentials" not in found  # a later success clears the old failures
    assert "SIP ALG suspected" in found["sip_alg"]
    assert "registers over TCP" in found["transport_mismatch"]
    assert "No agent is linked" in found["agent_not_linked"]
    Agent.objects.create(tenant=trunk.tenant, name="Reception", trunk=trunk)
    assert "agent_not_linked" not in findings_of(owner_client, trunk)
    apply(*call_events(trunk, at=now - 20, caller="+27825550201", target="101", status=603, reason="Decline"))
    assert "603" in findings_of(owner_client, trunk)["extension_rejected"]
    apply(
        *call_events(trunk, at=now - 10, caller="+27825550202", target="109", status=404, reason="Not Found")
    )
    assert "sip:EXT@pbx.acme.test" in findings_of(owner_client, trunk)["wrong_pbx_domain"]
