"""Call pages: the workspace's calls (filtered by trunk) and one call's detail. Read-only."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from smartalex.tenancy.decorators import workspace_required
from smartalex.tenancy.roles import Action
from trunks.selectors import trunk_get, trunk_list

from .selectors import call_get, call_list, call_trace_url

PAGE_SIZE = 100


def _trunk_filter(request: HttpRequest) -> int | None:
    value = request.GET.get("trunk", "")
    if not value.isdigit():
        return None
    return trunk_get(tenant=request.tenant, trunk_id=int(value)).pk  # another workspace's: 404


@workspace_required(Action.READ)
@require_GET
def call_list_view(request: HttpRequest) -> HttpResponse:
    trunk_id = _trunk_filter(request)
    context = {
        "calls": call_list(tenant=request.tenant, trunk_id=trunk_id)[:PAGE_SIZE],
        "trunks": trunk_list(tenant=request.tenant),
        "trunk_id": trunk_id,
    }
    template = "calls/list.html#rows" if request.htmx else "calls/list.html"
    return render(request, template, context)


@workspace_required(Action.READ)
@require_GET
def call_detail(request: HttpRequest, call_id: int) -> HttpResponse:
    call = call_get(tenant=request.tenant, call_id=call_id)
    understanding = call.understanding or {}
    context = {
        "call": call,
        "trace_url": call_trace_url(call=call),
        "understanding": understanding,
        "turns": understanding.get("turns") or [],
    }
    return render(request, "calls/detail.html", context)
