"""Reads for the support console (across workspaces) and for trunk health (one trunk).

Only the `support_*` functions read across workspaces; views call them after checking
`request.user.is_support`. Everything else takes a trunk the caller has already been allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from calls.models import Call
from calls.presentation import call_transfer_outcome, outcome_in_words, transfer_in_words
from smartalex.tenancy.models import Tenant
from trunks.models import Did, RegistrationState, SipTrunk, TrunkEvent
from trunks.presentation import sip_alg_suspected
from trunks.selectors import trunk_extension_count, trunk_status

from .diagnosis import TrunkFacts
from .models import SipTrace, SupportAccess, TrunkAlert

AUTH_FAILING_WINDOW = timedelta(hours=1)
FLAP_WINDOW = timedelta(minutes=15)
FLAP_TRANSITIONS = 3
FLAP_KINDS = ("registered", "expired", "unreachable")
UNKNOWN_DID_WINDOW = timedelta(hours=24)

CONSOLE_FILTERS = {
    "": "All",
    "not_registered": "Not registered",
    "unreachable": "Unreachable",
    "failing_auth": "Failing auth",
    "flapping": "Flapping",
    "suspended": "Suspended",
}


def _failing_auth_ids(now: datetime) -> QuerySet:
    return TrunkEvent.objects.filter(kind="auth_failed", at__gte=now - AUTH_FAILING_WINDOW).values("trunk_id")


def _flapping_ids(now: datetime) -> QuerySet:
    # Grouped over the window only (the events index on `at`), not per trunk: cheap at 10,000 trunks.
    return (
        TrunkEvent.objects.filter(kind__in=FLAP_KINDS, at__gte=now - FLAP_WINDOW)
        .values("trunk_id")
        .annotate(transitions=Count("id"))
        .filter(transitions__gte=FLAP_TRANSITIONS)
        .values("trunk_id")
    )


def _state_q(state: str) -> Q:
    active = Q(suspended_at__isnull=True)
    if state == RegistrationState.NOT_REGISTERED:
        return active & (Q(status__isnull=True) | Q(status__state=RegistrationState.NOT_REGISTERED))
    return active & Q(status__state=state)


def _filter_q(name: str, now: datetime) -> Q:
    match name:
        case "not_registered" | "unreachable":
            return _state_q(name)
        case "suspended":
            return Q(suspended_at__isnull=False)
        case "failing_auth":
            return Q(pk__in=_failing_auth_ids(now))
        case "flapping":
            return Q(pk__in=_flapping_ids(now))
    return Q()


def support_trunk_search(
    *, query: str = "", filter_name: str = "", now: datetime | None = None
) -> QuerySet[SipTrunk]:
    """Every workspace's trunks (support only), filtered and searched, newest problems first."""
    now = now or timezone.now()
    trunks = SipTrunk.objects.select_related("tenant", "status").filter(_filter_q(filter_name, now))
    query = query.strip()
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        matches = (
            Q(tenant__name__icontains=query)
            | Q(name__icontains=query)
            | Q(pbx_domain__icontains=query)
            | Q(status__source__icontains=query)
            | Q(status__user_agent__icontains=query)
        )
        if len(digits) >= 3:
            matches |= Exists(Did.objects.filter(trunk=OuterRef("pk"), number__contains=digits))
        trunks = trunks.filter(matches)
    return trunks.order_by("tenant__name", "name", "pk")


def support_console_counts(*, now: datetime | None = None) -> dict[str, int]:
    """The figures at the top of the console, in one query."""
    now = now or timezone.now()
    return SipTrunk.objects.aggregate(
        all=Count("pk"),
        registered=Count("pk", filter=_state_q(RegistrationState.REGISTERED)),
        not_registered=Count("pk", filter=_state_q(RegistrationState.NOT_REGISTERED)),
        unreachable=Count("pk", filter=_state_q(RegistrationState.UNREACHABLE)),
        suspended=Count("pk", filter=Q(suspended_at__isnull=False)),
        failing_auth=Count("pk", filter=Q(pk__in=_failing_auth_ids(now))),
        flapping=Count("pk", filter=Q(pk__in=_flapping_ids(now))),
    )


def support_trunk_get(*, trunk_id: int) -> SipTrunk:
    """Any workspace's trunk: only for support staff (the view checks)."""
    return get_object_or_404(SipTrunk.objects.select_related("tenant", "status"), pk=trunk_id)


def support_trace_get(*, trace_id: int) -> SipTrace:
    return get_object_or_404(SipTrace.objects.select_related("trunk", "tenant"), pk=trace_id)


def support_unmatched_traces(*, limit: int = 50) -> QuerySet[SipTrace]:
    """REGISTERs whose username matched no trunk: platform-level, support only."""
    return SipTrace.objects.filter(trunk__isnull=True).order_by("-at")[:limit]


def trace_get(*, tenant: Tenant, trunk: SipTrunk, trace_id: int) -> SipTrace:
    """A trace of the workspace's trunk; another workspace's trace is the same 404 as a missing one."""
    return get_object_or_404(
        SipTrace.objects.select_related("trunk").filter(tenant=tenant, trunk=trunk), pk=trace_id
    )


# --- one trunk's health ------------------------------------------------------------------------


def trunk_is_flapping(*, trunk: SipTrunk, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    recent = TrunkEvent.objects.filter(trunk=trunk, kind__in=FLAP_KINDS, at__gte=now - FLAP_WINDOW)
    return recent.count() >= FLAP_TRANSITIONS


def _has_agent(trunk: SipTrunk) -> bool:
    try:
        return trunk.agent is not None
    except ObjectDoesNotExist:
        return False


def _source_ip(source: str) -> str:
    if source.startswith("["):
        return source[1:].split("]")[0]
    return source.rsplit(":", 1)[0] if source.count(":") == 1 else source


def trunk_facts(*, trunk: SipTrunk, now: datetime | None = None) -> TrunkFacts:
    now = now or timezone.now()
    status = trunk_status(trunk=trunk)
    events = TrunkEvent.objects.filter(trunk=trunk)
    failures = events.filter(kind="auth_failed", at__gte=now - AUTH_FAILING_WINDOW).values_list(
        "detail", flat=True
    )
    # A success after the failures means they no longer apply.
    last_ok = events.filter(kind="registered").order_by("-at").values_list("at", flat=True).first()
    if last_ok is not None:
        failures = failures.filter(at__gt=last_ok)
    calls = recent_calls(trunk=trunk)
    return TrunkFacts(
        suspended=trunk.is_suspended,
        state=status.state,
        uses_credentials=trunk.uses_credentials,
        uses_ip_whitelist=trunk.uses_ip_whitelist,
        ever_registered=status.registered_at is not None or last_ok is not None,
        recent_auth_failures=tuple(sorted({str((d or {}).get("reason", "")) for d in failures} - {""})),
        sip_alg_suspected=sip_alg_suspected(contact=status.contact, source=status.source)
        or _engine_saw_sip_alg(events),
        trunk_transport=trunk.transport,
        registered_transport=status.transport if status.state == RegistrationState.REGISTERED else "",
        flapping=trunk_is_flapping(trunk=trunk, now=now),
        did_count=trunk.dids.count(),
        has_agent=_has_agent(trunk),
        extension_count=trunk_extension_count(trunk=trunk),
        pbx_domain=trunk.pbx_domain,
        registered_source_ip=_source_ip(status.source) if status.source else "",
        transfer_failure_codes=tuple(
            c.transfer_status for c in calls if c.transfer_status and c.transfer_status >= 300
        ),
        unknown_dids_called=unknown_dids_called(trunk=trunk, now=now),
    )


def _engine_saw_sip_alg(events: QuerySet[TrunkEvent]) -> bool:
    """The registrar also reads the Via and every Contact: its warning on the latest
    registration counts even when the stored Contact looks clean."""
    latest = events.filter(kind="registered").order_by("-at").values_list("detail", flat=True).first()
    return any("SIP ALG" in str(w) for w in (latest or {}).get("warnings", []))


def unknown_dids_called(*, trunk: SipTrunk, now: datetime | None = None, limit: int = 5) -> tuple[str, ...]:
    """Numbers the trunk's PBX sent calls for lately that are not (or not yet) its DIDs, newest
    first: adding the number to the DIDs clears the finding at once."""
    now = now or timezone.now()
    rows = (
        TrunkEvent.objects.filter(trunk=trunk, kind="call_not_routed", at__gte=now - UNKNOWN_DID_WINDOW)
        .order_by("-at")
        .values_list("detail", flat=True)[:200]
    )
    own = set(trunk.dids.values_list("number", flat=True))
    found: list[str] = []
    for detail in rows:
        number = str((detail or {}).get("number", ""))
        if number and number not in own and number not in found:
            found.append(number)
    return tuple(found[:limit])


@dataclass(frozen=True)
class LatencyPoint:
    at: datetime
    ms: float


def trunk_latency_points(*, trunk: SipTrunk, limit: int = 60) -> list[LatencyPoint]:
    """OPTIONS round trips, oldest first (from reachability events and worker probes)."""
    rows = (
        TrunkEvent.objects.filter(trunk=trunk, kind__in=("reachable", "options_probe"))
        .order_by("-at")
        .values_list("at", "detail")[:limit]
    )
    points = [
        LatencyPoint(at, float(d["latency_ms"])) for at, d in rows if (d or {}).get("latency_ms") is not None
    ]
    return list(reversed(points))


def trunk_timeline(*, trunk: SipTrunk, limit: int = 50) -> QuerySet[TrunkEvent]:
    kinds = (
        "registered",
        "unregistered",
        "expired",
        "auth_failed",
        "reachable",
        "unreachable",
        "options_probe",
        "test_call_probe",
    )
    return TrunkEvent.objects.filter(trunk=trunk, kind__in=kinds).order_by("-at", "-pk")[:limit]


def trunk_auth_failures(*, trunk: SipTrunk, limit: int = 20) -> QuerySet[TrunkEvent]:
    return TrunkEvent.objects.filter(trunk=trunk, kind="auth_failed").order_by("-at", "-pk")[:limit]


@dataclass(frozen=True)
class CallSummary:
    pk: int
    at: datetime | None
    caller: str
    did: str
    outcome: str
    outcome_words: str
    transfer_target: str
    transfer_status: int | None
    transfer_reason: str
    transfer_outcome: str | None  # accepted | refused | failed | timeout
    transfer_words: str


def recent_calls(*, trunk: SipTrunk, limit: int = 20) -> list[CallSummary]:
    """The trunk's last calls, newest first, with their outcome and transfer in words."""
    rows = Call.objects.filter(trunk=trunk).order_by(F("invited_at").desc(nulls_last=True), "-created_at")
    return [
        CallSummary(
            pk=c.pk,
            at=c.invited_at or c.created_at,
            caller=c.caller,
            did=c.did,
            outcome=c.outcome,
            outcome_words=outcome_in_words(c),
            transfer_target=c.transfer_target,
            transfer_status=c.transfer_status,
            transfer_reason=c.transfer_reason,
            transfer_outcome=call_transfer_outcome(c),
            transfer_words=transfer_in_words(c),
        )
        for c in rows[:limit]
    ]


def open_alerts(*, tenant: Tenant, trunk: SipTrunk | None = None) -> QuerySet[TrunkAlert]:
    alerts = TrunkAlert.objects.filter(tenant=tenant, closed_at__isnull=True).select_related("trunk")
    return alerts.filter(trunk=trunk) if trunk is not None else alerts


def support_access_list(*, tenant: Tenant, limit: int = 200) -> QuerySet[SupportAccess]:
    return SupportAccess.objects.filter(tenant=tenant).select_related("user").order_by("-at", "-pk")[:limit]
