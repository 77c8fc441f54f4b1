"""Reads for trunks and DIDs, always scoped by workspace."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from smartalex.tenancy.models import Tenant

from .models import Did, RegistrationState, SipTrunk


def trunk_list(*, tenant: Tenant) -> QuerySet[SipTrunk]:
    return SipTrunk.objects.filter(tenant=tenant).select_related("status").order_by("name")


def trunk_get(*, tenant: Tenant, trunk_id: int) -> SipTrunk:
    """Another workspace's trunk and a missing one look the same: 404."""
    return get_object_or_404(trunk_list(tenant=tenant), pk=trunk_id)


def did_list(*, tenant: Tenant) -> QuerySet[Did]:
    return Did.objects.filter(tenant=tenant).select_related("trunk", "trunk__agent").order_by("number")


def did_get(*, tenant: Tenant, did_id: int) -> Did:
    return get_object_or_404(did_list(tenant=tenant), pk=did_id)


def trunk_counts(*, tenant: Tenant) -> dict[str, int]:
    trunks = trunk_list(tenant=tenant)
    return {
        "trunks": trunks.count(),
        "registered": trunks.filter(status__state=RegistrationState.REGISTERED).count(),
        "dids": Did.objects.filter(tenant=tenant).count(),
    }
