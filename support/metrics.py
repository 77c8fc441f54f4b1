"""`/metrics` for the web app: Prometheus text, behind a bearer token (settings.METRICS_TOKEN).

A token rather than an IP rule: the web app sits behind a load balancer whose addresses say
nothing about the scraper. With no token configured the endpoint does not exist (404).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from calls.models import Call, CallOutcome
from telephony.events import TRANSFER_OUTCOMES, transfer_outcome
from trunks.models import RegistrationState, SipTrunk

from .models import TrunkAlert


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(offered.encode(), token.encode())


def _trunk_states() -> dict[str, int]:
    active = Q(suspended_at__isnull=True)
    return SipTrunk.objects.aggregate(
        registered=Count("pk", filter=active & Q(status__state=RegistrationState.REGISTERED)),
        not_registered=Count(
            "pk",
            filter=active & (Q(status__isnull=True) | Q(status__state=RegistrationState.NOT_REGISTERED)),
        ),
        unreachable=Count("pk", filter=active & Q(status__state=RegistrationState.UNREACHABLE)),
        suspended=Count("pk", filter=Q(suspended_at__isnull=False)),
    )


def _call_counts() -> dict[str, int]:
    counts = dict.fromkeys(CallOutcome.values, 0)
    counts.update(Call.objects.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))
    return counts


def _transfer_counts() -> dict[str, int]:
    """Each call's last transfer attempt, by outcome (the record keeps the last attempt only)."""
    counts = dict.fromkeys(TRANSFER_OUTCOMES, 0)
    by_status = (
        Call.objects.exclude(transfer_target="")
        .values_list("transfer_status")
        .annotate(n=Count("pk"))
        .values_list("transfer_status", "n")
    )
    for status, n in by_status:  # a handful of distinct codes: classified here, not in SQL
        counts[transfer_outcome(accepted=status is None or status < 300, status=status)] += n
    return counts


def _queue_depth() -> int | None:
    broker = getattr(settings, "CELERY_BROKER_URL", "")
    if not broker.startswith("redis"):
        return None
    import redis

    try:
        return int(redis.Redis.from_url(broker, socket_timeout=1).llen("celery"))
    except redis.RedisError:
        return None


def metrics_text() -> bytes:
    registry = CollectorRegistry()
    trunks = Gauge("smartalex_trunks", "SIP trunks by state", ["state"], registry=registry)
    for state, count in _trunk_states().items():
        trunks.labels(state=state).set(count)
    alerts = Gauge("smartalex_trunk_alerts_open", "Open trunk alerts by kind", ["kind"], registry=registry)
    for kind, count in (
        TrunkAlert.objects.filter(closed_at__isnull=True).values_list("kind").annotate(n=Count("pk"))
    ):
        alerts.labels(kind=kind).set(count)
    calls = Gauge("smartalex_calls", "Recorded calls by outcome", ["outcome"], registry=registry)
    for outcome, count in _call_counts().items():
        calls.labels(outcome=outcome).set(count)
    transfers = Gauge(
        "smartalex_transfers",
        "Recorded calls' last transfer attempt by outcome",
        ["outcome"],
        registry=registry,
    )
    for outcome, count in _transfer_counts().items():
        transfers.labels(outcome=outcome).set(count)
    depth = _queue_depth()
    if depth is not None:
        Gauge("smartalex_celery_queue_depth", "Tasks waiting in the celery queue", registry=registry).set(
            depth
        )
    return generate_latest(registry)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        raise Http404
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
