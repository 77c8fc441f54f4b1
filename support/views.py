"""Support console (support staff, every workspace) and trunk health (support and the workspace).

Thin: selectors read, services write and audit. Support pages answer 404 to everyone else, so
their existence is not advertised. Every support view of one workspace's data is audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from smartalex.tenancy.decorators import workspace_required
from smartalex.tenancy.models import Role
from smartalex.tenancy.roles import Action, role_can
from trunks.models import SipTrunk
from trunks.presentation import status_view
from trunks.selectors import trunk_get

from . import tasks
from .diagnosis import diagnose
from .models import AccessKind, SipTrace
from .presentation import latency_chart, timeline_entry
from .selectors import (
    CONSOLE_FILTERS,
    open_alerts,
    recent_calls,
    support_access_list,
    support_console_counts,
    support_trace_get,
    support_trunk_get,
    support_trunk_search,
    support_unmatched_traces,
    trace_get,
    trunk_auth_failures,
    trunk_facts,
    trunk_latency_points,
    trunk_timeline,
)
from .services import support_access_record, support_bundle_build
from .traces import (
    mask_numbers,
    pcap_bytes,
    redaction_for,
    trace_as_text,
    trace_ladder,
    trace_list,
    trace_messages,
)

CONSOLE_PAGE_SIZE = 50
TRACES_SHOWN = 20


def support_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Platform support staff only; anyone else gets the 404 of a page that does not exist."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_support:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


# --- the console -----------------------------------------------------------------------------


@support_required
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    filter_name = request.GET.get("filter", "")
    if filter_name not in CONSOLE_FILTERS:
        filter_name = ""
    trunks = support_trunk_search(query=query, filter_name=filter_name).prefetch_related("dids")
    page = Paginator(trunks, CONSOLE_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": [(t, status_view(trunk=t, hide_credentials=True)) for t in page.object_list],
        "counts": support_console_counts(),
        "filters": CONSOLE_FILTERS,
        "filter_name": filter_name,
        "query": query,
        "unmatched": support_unmatched_traces(limit=10) if not query and not filter_name else [],
    }
    template = "support/console.html#results" if request.htmx else "support/console.html"
    return render(request, template, context)


# --- trunk health (one page, two doors) --------------------------------------------------------


def _health_context(request: HttpRequest, trunk: SipTrunk, *, support: bool) -> dict:
    if support:
        trace_url = lambda t: reverse("support:support-trace", args=[t.pk])  # noqa: E731
        bundle_url = reverse("support:support-bundle", args=[trunk.pk])
    else:
        trace_url = lambda t: reverse("support:trunk-trace", args=[trunk.pk, t.pk])  # noqa: E731
        bundle_url = reverse("support:trunk-bundle", args=[trunk.pk])
    traces = list(trace_list(trunk=trunk)[:TRACES_SHOWN])
    calls = recent_calls(trunk=trunk)
    if support:
        calls = [replace(c, caller=mask_numbers(c.caller)) for c in calls]
    return {
        "trunk": trunk,
        "support": support,
        "status": status_view(trunk=trunk, hide_credentials=support),
        "findings": diagnose(trunk_facts(trunk=trunk)),
        "timeline": [timeline_entry(e) for e in trunk_timeline(trunk=trunk)],
        "chart": latency_chart(trunk_latency_points(trunk=trunk)),
        "auth_failures": [timeline_entry(e) for e in trunk_auth_failures(trunk=trunk)],
        "traces": [(t, trace_url(t)) for t in traces],
        "calls": calls,
        "alerts": open_alerts(tenant=trunk.tenant, trunk=trunk),
        "bundle_url": bundle_url,
        "probe_url": reverse(
            "support:support-trunk-probe" if support else "support:trunk-probe", args=[trunk.pk]
        ),
        "can_probe": support or role_can(request.membership.role, Action.MANAGE_TELEPHONY),
    }


@support_required
@require_GET
def support_trunk_health(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = support_trunk_get(trunk_id=trunk_id)
    support_access_record(user=request.user, trunk=trunk, kind=AccessKind.HEALTH)
    return render(request, "support/health.html", _health_context(request, trunk, support=True))


@workspace_required(Action.READ)
@require_GET
def trunk_health(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    support_access_record(user=request.user, trunk=trunk, kind=AccessKind.HEALTH)
    return render(
        request, "support/health.html", _health_context(request, trunk, support=request.user.is_support)
    )


# --- traces ------------------------------------------------------------------------------------


def _trace_page(
    request: HttpRequest, trace: SipTrace, *, support: bool, pcap_url: str, back_url: str
) -> HttpResponse:
    redaction = redaction_for(trace=trace, support=support)
    messages = trace_messages(trace=trace, redaction=redaction)
    context = {
        "trace": trace,
        "support": support,
        "ladder": trace_ladder(messages=messages),
        "text": trace_as_text(trace=trace, messages=messages),
        "pcap_url": pcap_url,
        "back_url": back_url,
        # Only on platform-level traces (no trunk): the username an unknown PBX tried.
        "claimed_username": trace.username if support and trace.trunk_id is None else "",
    }
    return render(request, "support/trace.html", context)


def _pcap_response(trace: SipTrace, messages: list[dict]) -> HttpResponse:
    response = HttpResponse(pcap_bytes(messages=messages), content_type="application/vnd.tcpdump.pcap")
    response["Content-Disposition"] = f'attachment; filename="sip-trace-{trace.pk}.pcap"'
    return response


def _audit_trace(request: HttpRequest, trace: SipTrace, kind: AccessKind) -> None:
    if trace.trunk is not None:
        subject = f"{trace.kind} trace {trace.at:%Y-%m-%d %H:%M:%S} of trunk “{trace.trunk.name}”"
        support_access_record(user=request.user, trunk=trace.trunk, kind=kind, subject=subject)


@support_required
@require_GET
def support_trace(request: HttpRequest, trace_id: int) -> HttpResponse:
    trace = support_trace_get(trace_id=trace_id)
    _audit_trace(request, trace, AccessKind.TRACE)
    back = (
        reverse("support:support-trunk", args=[trace.trunk_id])
        if trace.trunk_id
        else reverse("support:console")
    )
    return _trace_page(
        request,
        trace,
        support=True,
        pcap_url=reverse("support:support-trace-pcap", args=[trace.pk]),
        back_url=back,
    )


@support_required
@require_GET
def support_trace_pcap(request: HttpRequest, trace_id: int) -> HttpResponse:
    trace = support_trace_get(trace_id=trace_id)
    _audit_trace(request, trace, AccessKind.PCAP)
    return _pcap_response(
        trace, trace_messages(trace=trace, redaction=redaction_for(trace=trace, support=True))
    )


@workspace_required(Action.READ)
@require_GET
def trunk_trace(request: HttpRequest, trunk_id: int, trace_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    trace = trace_get(tenant=request.tenant, trunk=trunk, trace_id=trace_id)
    _audit_trace(request, trace, AccessKind.TRACE)
    return _trace_page(
        request,
        trace,
        support=request.user.is_support,
        pcap_url=reverse("support:trunk-trace-pcap", args=[trunk.pk, trace.pk]),
        back_url=reverse("support:trunk-health", args=[trunk.pk]),
    )


@workspace_required(Action.READ)
@require_GET
def trunk_trace_pcap(request: HttpRequest, trunk_id: int, trace_id: int) -> HttpResponse:
    """The workspace Owner gets the bytes as they were on the wire; everyone else the redacted copy."""
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    trace = trace_get(tenant=request.tenant, trunk=trunk, trace_id=trace_id)
    _audit_trace(request, trace, AccessKind.PCAP)
    redaction = redaction_for(
        trace=trace,
        support=request.user.is_support,
        owner=request.membership.role == Role.OWNER,
        raw=True,
    )
    return _pcap_response(trace, trace_messages(trace=trace, redaction=redaction))


# --- bundles -----------------------------------------------------------------------------------


def _bundle_response(trunk: SipTrunk) -> HttpResponse:
    body = json.dumps(support_bundle_build(trunk=trunk), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="support-bundle-trunk-{trunk.pk}.json"'
    return response


@support_required
@require_GET
def support_bundle(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = support_trunk_get(trunk_id=trunk_id)
    support_access_record(user=request.user, trunk=trunk, kind=AccessKind.BUNDLE)
    return _bundle_response(trunk)


@workspace_required(Action.READ)
@require_GET
def trunk_bundle(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    support_access_record(user=request.user, trunk=trunk, kind=AccessKind.BUNDLE)
    return _bundle_response(trunk)


# --- the audit, for the workspace Owner ----------------------------------------------------------


@workspace_required(Action.READ)
@require_GET
def support_access(request: HttpRequest) -> HttpResponse:
    if request.membership.role != Role.OWNER:
        raise Http404  # the Owner's page; other roles do not learn what support looked at
    return render(request, "support/access.html", {"accesses": support_access_list(tenant=request.tenant)})


# --- probes --------------------------------------------------------------------------------------


def _queue_probe(request: HttpRequest, trunk: SipTrunk) -> None:
    extension = request.POST.get("extension", "").strip()[:32]
    if request.POST.get("probe") == "call":
        if not extension.isdigit():
            messages.error(request, "Enter the extension number to ring, e.g. 101.")
            return
        tasks.probe_test_call.delay(trunk.pk, extension)
        messages.success(request, f"Test call to {extension} queued: the result appears in the history.")
    else:
        tasks.probe_options.delay(trunk.pk)
        messages.success(request, "OPTIONS queued: the round trip appears in the history.")


@support_required
@require_POST
def support_trunk_probe(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = support_trunk_get(trunk_id=trunk_id)
    support_access_record(user=request.user, trunk=trunk, kind=AccessKind.PROBE)
    _queue_probe(request, trunk)
    return redirect("support:support-trunk", trunk.pk)


@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def trunk_probe(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    _queue_probe(request, trunk)
    return redirect("support:trunk-health", trunk.pk)
