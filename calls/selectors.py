"""Reads of call records, always within one workspace."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from smartalex.tenancy.models import Tenant

from .models import Call


def call_list(*, tenant: Tenant, trunk_id: int | None = None) -> QuerySet[Call]:
    calls = Call.objects.filter(tenant=tenant).select_related("trunk", "agent")
    if trunk_id is not None:
        calls = calls.filter(trunk_id=trunk_id)
    return calls


def call_get(*, tenant: Tenant, call_id: int) -> Call:
    """Another workspace's call and a missing one look the same: 404."""
    return get_object_or_404(call_list(tenant=tenant), pk=call_id)


def call_trace_url(*, call: Call) -> str | None:
    """The call's SIP trace page (support app, workspace view), once the worker has stored it."""
    from django.urls import NoReverseMatch, reverse

    try:
        from support.models import SipTrace
    except ImportError:
        return None
    if call.trunk_id is None or not call.sip_call_id:
        return None
    trace = (
        SipTrace.objects.filter(
            tenant_id=call.tenant_id, trunk_id=call.trunk_id, kind="call", call_id=call.sip_call_id
        )
        .order_by("at")
        .only("pk")
        .first()
    )
    if trace is None:
        return None
    try:
        return reverse("support:trunk-trace", args=[call.trunk_id, trace.pk])
    except NoReverseMatch:
        return None
