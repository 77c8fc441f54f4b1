"""Trunk pages: the list, a trunk's detail (status, settings, DIDs, history) and its actions;
the Phone Numbers page. Thin: forms parse, services write, selectors read."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from smartalex.errors import ApplicationError
from smartalex.tenancy.decorators import workspace_required
from smartalex.tenancy.roles import Action

from .forms import DidForm, PhoneNumberForm, TrunkSettingsForm, add_application_error
from .models import SipTrunk
from .presentation import event_view, status_view
from .selectors import did_get, did_list, trunk_events, trunk_get, trunk_list, trunk_problems
from .services import (
    did_add,
    did_remove,
    trunk_delete,
    trunk_reactivate,
    trunk_regenerate_password,
    trunk_suspend,
    trunk_update,
)
from .wizard_views import render_with_password

HISTORY_SHOWN = 50
READ_OR_MANAGE = {"action": Action.READ, "write": Action.MANAGE_TELEPHONY}


@workspace_required(**READ_OR_MANAGE)
@require_GET
def trunk_list_view(request: HttpRequest) -> HttpResponse:
    trunks = [(t, status_view(trunk=t)) for t in trunk_list(tenant=request.tenant)]
    return render(request, "trunks/list.html", {"trunks": trunks})


def _detail_context(request: HttpRequest, trunk: SipTrunk, **overrides) -> dict:
    context = {
        "trunk": trunk,
        "status": status_view(trunk=trunk, hide_credentials=request.user.is_support),
        "problems": trunk_problems(trunk=trunk),
        "settings_form": TrunkSettingsForm(tenant=request.tenant, trunk=trunk),
        "did_form": DidForm(),
        "dids": trunk.dids.order_by("number"),
        "events": [event_view(e) for e in trunk_events(trunk=trunk)[:HISTORY_SHOWN]],
        "show_credentials": not request.user.is_support,
    }
    context.update(overrides)
    return context


@workspace_required(**READ_OR_MANAGE)
@require_GET
def trunk_detail(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    return render(request, "trunks/detail.html", _detail_context(request, trunk))


@workspace_required(**READ_OR_MANAGE)
@require_GET
def trunk_status_partial(request: HttpRequest, trunk_id: int) -> HttpResponse:
    """The current status, polled by the detail page."""
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    if not request.htmx:
        return redirect("trunks:detail", trunk_id)
    context = {
        "trunk": trunk,
        "status": status_view(trunk=trunk),
        "show_credentials": not request.user.is_support,
    }
    return render(request, "trunks/detail.html#status", context)


@workspace_required(**READ_OR_MANAGE)
@require_GET
def trunk_history_partial(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    if not request.htmx:
        return redirect(reverse("trunks:detail", args=[trunk_id]) + "#history")
    events = [event_view(e) for e in trunk_events(trunk=trunk)[:HISTORY_SHOWN]]
    return render(request, "trunks/detail.html#history", {"trunk": trunk, "events": events})


@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def trunk_settings(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    form = TrunkSettingsForm(request.POST, tenant=request.tenant, trunk=trunk)
    saved = False
    if form.is_valid():
        try:
            trunk = trunk_update(trunk=trunk, values=form.to_settings())
            saved = True
        except ApplicationError as exc:
            add_application_error(form, exc)
            trunk.refresh_from_db()  # the service may have changed the instance before refusing
    if request.htmx:
        return render(
            request, "trunks/detail.html#settings", {"trunk": trunk, "settings_form": form, "saved": saved}
        )
    if saved:
        messages.success(request, "Settings saved. Your PBX keeps its registration.")
        return redirect("trunks:detail", trunk.pk)
    return render(request, "trunks/detail.html", _detail_context(request, trunk, settings_form=form))


@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def trunk_suspend_view(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_suspend(trunk=trunk_get(tenant=request.tenant, trunk_id=trunk_id))
    messages.success(
        request, f"“{trunk.name}” is suspended: SmartAlex refuses its calls until you reactivate it."
    )
    return redirect("trunks:detail", trunk.pk)


@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def trunk_reactivate_view(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_reactivate(trunk=trunk_get(tenant=request.tenant, trunk_id=trunk_id))
    messages.success(request, f"“{trunk.name}” is active again.")
    return redirect("trunks:detail", trunk.pk)


@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def trunk_regenerate_view(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    password = trunk_regenerate_password(trunk=trunk)
    return render_with_password(request, trunk, password, heading=f"New password for “{trunk.name}”")


@workspace_required(Action.MANAGE_TELEPHONY)
@require_http_methods(["GET", "POST"])
def trunk_delete_view(request: HttpRequest, trunk_id: int) -> HttpResponse:
    """Deleting asks first: the PBX loses its trunk and the DIDs stop ringing the agent."""
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    if request.method == "POST":
        name = trunk.name
        trunk_delete(trunk=trunk)
        messages.success(request, f"Trunk “{name}” deleted.")
        return redirect("trunks:list")
    return render(request, "trunks/delete.html", {"trunk": trunk, "dids": trunk.dids.order_by("number")})


def _render_dids(request: HttpRequest, trunk: SipTrunk, form: DidForm, *, added=None) -> HttpResponse:
    """The DIDs panel, and (out of band) the warnings above it, which depend on the DIDs."""
    context = {
        "trunk": trunk,
        "dids": trunk.dids.order_by("number"),
        "did_form": form,
        "added": added,
        "problems": trunk_problems(trunk=trunk),
        "refresh_problems": True,
    }
    return render(request, "trunks/detail.html#dids", context)


@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def trunk_did_add(request: HttpRequest, trunk_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    form = DidForm(request.POST)
    added = None
    if form.is_valid():
        try:
            added = did_add(trunk=trunk, number=form.cleaned_data["number"])
            form = DidForm()
        except ApplicationError as exc:
            add_application_error(form, exc)
    if request.htmx:
        return _render_dids(request, trunk, form, added=added)
    if added is not None:
        messages.success(request, f"{added.number} added to “{trunk.name}”.")
        return redirect(reverse("trunks:detail", args=[trunk.pk]) + "#dids")
    return render(request, "trunks/detail.html", _detail_context(request, trunk, did_form=form))


@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def trunk_did_remove(request: HttpRequest, trunk_id: int, did_id: int) -> HttpResponse:
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    did = did_get(tenant=request.tenant, did_id=did_id, trunk=trunk)
    number = did.number
    did_remove(did=did)
    if request.htmx:
        return _render_dids(request, trunk, DidForm())
    messages.success(request, f"{number} removed from “{trunk.name}”.")
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect(reverse("trunks:detail", args=[trunk.pk]) + "#dids")


@workspace_required(**READ_OR_MANAGE)
@require_http_methods(["GET", "POST"])
def phone_numbers(request: HttpRequest) -> HttpResponse:
    """All the workspace's DIDs with their trunk and agent; the entry to Connect Your Carrier."""
    form = PhoneNumberForm(request.POST or None, tenant=request.tenant)
    added = None
    if request.method == "POST" and form.is_valid():
        try:
            added = did_add(trunk=form.cleaned_data["trunk"], number=form.cleaned_data["number"])
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            if not request.htmx:
                messages.success(request, f"{added.number} added to “{added.trunk.name}”.")
                return redirect("trunks:phone-numbers")
            form = PhoneNumberForm(tenant=request.tenant)
    context = {
        "form": form,
        "added": added,
        "dids": did_list(tenant=request.tenant),
        "has_trunks": trunk_list(tenant=request.tenant).exists(),
    }
    template = "trunks/phone_numbers.html#numbers" if request.htmx else "trunks/phone_numbers.html"
    return render(request, template, context)
