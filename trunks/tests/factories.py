"""Builders for trunk tests (plain functions, so the agents app's tests can use them too)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from smartalex.tenancy.models import Tenant
from trunks.models import SipTrunk, TrunkEvent, TrunkStatus
from trunks.services import TrunkSettings, did_add, trunk_create


def make_trunk(tenant: Tenant, name: str = "Main office", **settings) -> tuple[SipTrunk, str | None]:
    values = TrunkSettings(name=name, pbx_domain=settings.pop("pbx_domain", "pbx.acme.test"), **settings)
    return trunk_create(tenant=tenant, values=values)


def make_trunk_with_did(tenant: Tenant, name: str, number: str) -> SipTrunk:
    trunk, _ = make_trunk(tenant, name)
    did_add(trunk=trunk, number=number)
    return trunk


def set_registered(trunk: SipTrunk, **fields) -> TrunkStatus:
    """What the registrar's worker writes when the PBX registers (simulated through the ORM)."""
    now = timezone.now()
    defaults = {
        "state": "registered",
        "contact": "sip:pbx@203.0.113.10:5060",
        "source": "203.0.113.10:5060",
        "transport": "udp",
        "user_agent": "3CXPhoneSystem 20.0.1",
        "registered_at": now,
        "last_register_at": now,
        "expires_at": now + timedelta(seconds=300),
    }
    defaults.update(fields)
    TrunkStatus.objects.filter(trunk=trunk).update(**defaults)
    trunk.refresh_from_db()
    return TrunkStatus.objects.get(trunk=trunk)


def add_event(trunk: SipTrunk, kind: str, seconds_ago: int = 0, **detail) -> TrunkEvent:
    return TrunkEvent.objects.create(
        tenant=trunk.tenant,
        trunk=trunk,
        kind=kind,
        detail=detail,
        at=timezone.now() - timedelta(seconds=seconds_ago),
    )
