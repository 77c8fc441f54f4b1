"""Reads for trunks and DIDs, always scoped by workspace."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import FieldError, ObjectDoesNotExist
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, reverse

from smartalex.tenancy.models import Tenant

from .models import Did, RegistrationState, SipTrunk, TrunkEvent, TrunkStatus

SUSPENDED = "suspended"


def trunk_list(*, tenant: Tenant) -> QuerySet[SipTrunk]:
    return (
        SipTrunk.objects.filter(tenant=tenant)
        .select_related("status", "agent")
        .annotate(did_count=Count("dids"))
        .order_by("name")
    )


def trunk_get(*, tenant: Tenant, trunk_id: int) -> SipTrunk:
    """Another workspace's trunk and a missing one look the same: 404."""
    return get_object_or_404(trunk_list(tenant=tenant), pk=trunk_id)


def did_list(*, tenant: Tenant) -> QuerySet[Did]:
    return Did.objects.filter(tenant=tenant).select_related("trunk", "trunk__agent").order_by("number")


def did_get(*, tenant: Tenant, did_id: int, trunk: SipTrunk | None = None) -> Did:
    """A DID of the workspace (and of `trunk`, when given); anything else is a 404."""
    dids = did_list(tenant=tenant)
    return get_object_or_404(dids.filter(trunk=trunk) if trunk is not None else dids, pk=did_id)


def trunk_counts(*, tenant: Tenant) -> dict[str, int]:
    trunks = trunk_list(tenant=tenant)
    return {
        "trunks": trunks.count(),
        "registered": trunks.filter(status__state=RegistrationState.REGISTERED).count(),
        "dids": Did.objects.filter(tenant=tenant).count(),
    }


def trunk_events(*, trunk: SipTrunk, kinds: tuple[str, ...] | None = None) -> QuerySet[TrunkEvent]:
    events = TrunkEvent.objects.filter(tenant=trunk.tenant, trunk=trunk).order_by("-at", "-pk")
    return events.filter(kind__in=kinds) if kinds else events


def trunk_status(*, trunk: SipTrunk) -> TrunkStatus:
    """The engine's last report; a trunk it has never heard of is simply not registered."""
    try:
        return trunk.status
    except TrunkStatus.DoesNotExist:
        return TrunkStatus(trunk=trunk, tenant=trunk.tenant)


def trunk_state(*, trunk: SipTrunk) -> str:
    """One of registered / not_registered / unreachable / suspended: suspension overrides the engine."""
    return SUSPENDED if trunk.is_suspended else trunk_status(trunk=trunk).state


def trunk_extension_count(*, trunk: SipTrunk) -> int | None:
    """How many extensions the directory has for this trunk; None while the extensions app has no model."""
    if not apps.is_installed("extensions"):
        return None
    try:
        extension_model = apps.get_model("extensions", "Extension")
        return extension_model.objects.filter(trunk=trunk).count()
    except (LookupError, FieldError):
        return None


@dataclass(frozen=True)
class Problem:
    """A cause from the troubleshooting guide that applies right now, and where to fix it."""

    code: str
    message: str
    fix_label: str = ""
    fix_url: str = ""


def _url(name: str, *args: object) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:  # the page belongs to an app that is not there yet
        return ""


def trunk_problems(*, trunk: SipTrunk, include_agent: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    if trunk.is_suspended:
        problems.append(
            Problem(
                "suspended",
                f"Trunk “{trunk.name}” is suspended: SmartAlex refuses its calls and the AI cannot transfer.",
                "Reactivate it",
                _url("trunks:detail", trunk.pk),
            )
        )
    if include_agent and not _has_agent(trunk):
        problems.append(
            Problem(
                "no_agent",
                f"No agent is linked to trunk “{trunk.name}”: its calls will not be answered.",
                "Agent Studio → Telephony tab → select the trunk",
                _url("agents:list"),
            )
        )
    if not trunk.dids.exists():
        problems.append(
            Problem(
                "no_did",
                f"Trunk “{trunk.name}” has no DIDs: a call to a number that is not in its DIDs list fails.",
                "Add the numbers to the trunk's DIDs",
                _url("trunks:detail", trunk.pk) + "#dids",
            )
        )
    if trunk_extension_count(trunk=trunk) == 0:
        problems.append(
            Problem(
                "no_extensions",
                f"Trunk “{trunk.name}” has no extensions: the AI cannot transfer callers by name.",
                "Settings → PBX",
                _url("extensions:pbx"),
            )
        )
    return problems


def _has_agent(trunk: SipTrunk) -> bool:
    try:
        return trunk.agent is not None
    except ObjectDoesNotExist:
        return False
