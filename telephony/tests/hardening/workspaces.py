"""A second workspace full of objects (workspace B) and a snapshot of everything it owns, for the
isolation tests: every id B has, and marker strings that must never appear in A's answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.utils import timezone

from smartalex.agents.models import Agent
from smartalex.agents.services import AgentSettings, agent_create
from smartalex.tenancy.models import ApiKey, Membership, Tenant
from smartalex.tenancy.services import api_key_create
from trunks.models import Did, SipTrunk, TrunkEvent, TrunkStatus
from trunks.services import TrunkSettings, did_add, trunk_create

MARKERS = {
    "trunk": "Globex-secret-trunk",
    "username": "globexsecret01",
    "domain": "pbx.globex-secret.test",
    "did": "+27215550177",
    "extension": "Globexina Secretson",
    "agent": "Globex Secret Agent",
    "caller": "+27825550133",
    "api_key": "globex-secret-key",
}


@dataclass
class WorkspaceB:
    tenant: Tenant
    ids: dict[str, object]  # URL keyword → one of B's ids

    @property
    def markers(self) -> list[str]:
        return list(MARKERS.values())


def populate(tenant: Tenant) -> WorkspaceB:
    from calls.models import Call
    from extensions.models import DirectoryImport
    from extensions.rules import ExtensionValues
    from extensions.services import extension_create
    from support.models import SipTrace

    trunk, _ = trunk_create(
        tenant=tenant,
        values=TrunkSettings(name=MARKERS["trunk"], pbx_domain=MARKERS["domain"]),
        username=MARKERS["username"],
        password="globex-password-000000001",
    )
    did = did_add(trunk=trunk, number=MARKERS["did"])
    extension = extension_create(
        trunk=trunk, values=ExtensionValues(number="4711", display_name=MARKERS["extension"])
    )
    agent = agent_create(tenant=tenant, values=AgentSettings(name=MARKERS["agent"]), trunk=trunk)
    call = Call.objects.create(
        tenant=tenant, trunk=trunk, agent=agent, call_ref=uuid.uuid4().hex[:32], did=MARKERS["did"],
        caller=MARKERS["caller"], invited_at=timezone.now(),
    )  # fmt: skip
    trace = SipTrace.objects.create(
        tenant=tenant, trunk=trunk, kind="register", call_id="globex-call-id", outcome="200 OK",
        username=MARKERS["username"], at=timezone.now(), messages=[], event_id=uuid.uuid4(),
    )  # fmt: skip
    job = DirectoryImport.objects.create(
        tenant=tenant, trunk=trunk, filename="globex.csv", content="extension,display_name\n9,X\n"
    )
    key, _ = api_key_create(tenant=tenant, name=MARKERS["api_key"])
    ids = {
        "trunk_id": trunk.pk,
        "did_id": did.pk,
        "extension_id": extension.pk,
        "agent_id": agent.pk,
        "call_id": call.pk,
        "trace_id": trace.pk,
        "key_id": key.pk,
        "token": job.token,
        "pk": trunk.pk,
    }
    return WorkspaceB(tenant=tenant, ids=ids)


def snapshot(tenant: Tenant) -> dict[str, list[dict]]:
    """Every row B owns, field by field: equal before and after means nothing changed."""
    from calls.models import Call
    from extensions.models import DirectoryImport, Extension
    from support.models import SipTrace, SupportAccess

    def rows(qs):
        return sorted((dict(r) for r in qs.values()), key=lambda r: str(r.get("id")))

    return {
        "trunks": rows(SipTrunk.objects.filter(tenant=tenant)),
        "status": rows(TrunkStatus.objects.filter(trunk__tenant=tenant)),
        "events": rows(TrunkEvent.objects.filter(trunk__tenant=tenant)),
        "dids": rows(Did.objects.filter(trunk__tenant=tenant)),
        "extensions": rows(Extension.objects.filter(tenant=tenant)),
        "imports": rows(DirectoryImport.objects.filter(tenant=tenant)),
        "agents": rows(Agent.objects.filter(tenant=tenant)),
        "calls": rows(Call.objects.filter(tenant=tenant)),
        "traces": rows(SipTrace.objects.filter(tenant=tenant)),
        "access": rows(SupportAccess.objects.filter(tenant=tenant)),
        "keys": rows(ApiKey.objects.filter(tenant=tenant)),
        "members": rows(Membership.objects.filter(tenant=tenant)),
    }
