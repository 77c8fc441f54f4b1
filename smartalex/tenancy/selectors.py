"""Reads for workspaces and memberships."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Membership, Tenant, User


def memberships_of(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")


def membership_get(*, user: User, tenant_id: int) -> Membership:
    """A workspace the user does not belong to and a missing one look the same: 404."""
    return get_object_or_404(memberships_of(user=user), tenant_id=tenant_id)


def tenant_members(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email")
