"""Phone Numbers → Connect Your Carrier → SIP Trunk: the wizard and its success screen.

The password is never stored: the success screen is rendered straight from the POST that created
the trunk (with htmx the URL is then pushed to the trunk's connection page, which no longer holds
it), and the response is marked no-store so neither the browser nor htmx's history keeps it.
"""

from __future__ import annotations

import dataclasses

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import push_url, reswap, retarget

from smartalex.errors import ApplicationError
from smartalex.tenancy.decorators import workspace_required
from smartalex.tenancy.roles import Action

from .connection import (
    connection_details,
    pbx_instructions,
    preview_details,
    trunk_pbx_instructions,
)
from .forms import CODEC_PRESETS, TrunkWizardForm, add_application_error, initial_for_vendor
from .models import AuthType, PbxVendor, SipTrunk, Transport
from .presentation import REGISTER_KINDS, event_view, status_view
from .selectors import trunk_events, trunk_get, trunk_problems
from .services import trunk_create

REGISTER_ATTEMPTS_SHOWN = 10
HIDDEN = "<hidden from support staff>"


@workspace_required(Action.MANAGE_TELEPHONY)
@require_GET
def connect(request: HttpRequest) -> HttpResponse:
    """Connect Your Carrier: the kinds of connection (today: a SIP trunk from your PBX)."""
    return render(request, "trunks/connect.html")


@sensitive_post_parameters("auth_password")
@workspace_required(Action.MANAGE_TELEPHONY)
@require_http_methods(["GET", "POST"])
def wizard(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        vendor = request.GET.get("pbx_vendor", PbxVendor.OTHER)
        form = TrunkWizardForm(tenant=request.tenant, initial=initial_for_vendor(vendor))
        return _render_wizard(request, form)
    if request.POST.get("_action") == "vendor":  # the PBX changed: bring its defaults, keep the rest
        initial = initial_for_vendor(request.POST.get("pbx_vendor", PbxVendor.OTHER), request.POST)
        return _render_wizard(request, TrunkWizardForm(tenant=request.tenant, initial=initial))
    form = TrunkWizardForm(request.POST, tenant=request.tenant)
    if form.is_valid():
        try:
            trunk, password = trunk_create(
                tenant=request.tenant,
                values=form.to_settings(),
                username=form.cleaned_data["auth_username"] or None,
                password=form.cleaned_data["auth_password"] or None,
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            return _render_created(request, trunk, password)
    return _render_wizard(request, form)


def _render_wizard(request: HttpRequest, form: TrunkWizardForm) -> HttpResponse:
    template = "trunks/wizard.html#wizard-form" if request.htmx else "trunks/wizard.html"
    return render(request, template, {"form": form, "notes": _preview_notes(form)})


def _form_value(form: TrunkWizardForm, name: str, default: str) -> str:
    value = form[name].value()
    return str(value) if value not in (None, "") else default


def _preview_notes(form: TrunkWizardForm):
    """The chosen PBX's notes as they will read once the trunk exists."""
    transport = _form_value(form, "transport", Transport.UDP)
    preset = _form_value(form, "codec_preset", next(iter(CODEC_PRESETS)))
    try:
        max_calls = int(_form_value(form, "max_concurrent_calls", "10"))
    except ValueError:
        max_calls = 10
    details = preview_details(
        transport=transport if transport in Transport.values else Transport.UDP,
        codecs=tuple(preset.split(",")),
        max_concurrent_calls=max_calls,
        username=_form_value(form, "auth_username", ""),
    )
    return pbx_instructions(
        vendor=_form_value(form, "pbx_vendor", PbxVendor.OTHER),
        auth_type=_form_value(form, "auth_type", AuthType.CREDENTIALS),
        values=details.placeholders(),
    )


@sensitive_post_parameters("auth_password")
@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def wizard_check(request: HttpRequest) -> HttpResponse:
    """Inline validation of one field as the customer leaves it; answers that field's feedback."""
    field = (request.htmx.trigger_name if request.htmx else None) or request.POST.get("_field", "")
    if field not in TrunkWizardForm.INLINE_FIELDS:
        return HttpResponseBadRequest("Unknown field.")
    form = TrunkWizardForm(request.POST, tenant=request.tenant)
    form.is_valid()  # validates everything; only this field's verdict is shown
    return render(
        request,
        "trunks/_feedback.html",
        {"errors": form.errors.get(field, []), "warnings": form.warnings.get(field, []), "field": field},
    )


def connection_context(request: HttpRequest, trunk: SipTrunk, *, password: str | None = None) -> dict:
    details = connection_details(trunk=trunk, password=password)
    show_credentials = not request.user.is_support
    # Support staff never see credentials, not even inside the PBX steps.
    step_details = details if show_credentials else dataclasses.replace(details, auth_username=HIDDEN)
    return {
        "trunk": trunk,
        "details": details,
        "rows": details.rows(),
        "instructions": trunk_pbx_instructions(trunk=trunk, details=step_details),
        "password_shown": password is not None,
        "show_credentials": show_credentials,
        **registration_context(request, trunk),
    }


def registration_context(request: HttpRequest, trunk: SipTrunk) -> dict:
    attempts = trunk_events(trunk=trunk, kinds=REGISTER_KINDS)[:REGISTER_ATTEMPTS_SHOWN]
    return {
        "trunk": trunk,
        "status": status_view(trunk=trunk, hide_credentials=request.user.is_support),
        "attempts": [event_view(e) for e in attempts],
        "problems": trunk_problems(trunk=trunk),
    }


def render_with_password(
    request: HttpRequest, trunk: SipTrunk, password: str | None, *, heading: str
) -> HttpResponse:
    """The connection page showing a password once: after create and after regenerate."""
    context = {**connection_context(request, trunk, password=password), "heading": heading}
    if request.htmx:
        response = render(request, "trunks/connection.html#page", context)
        retarget(response, "#page")
        reswap(response, "outerHTML")
        push_url(response, reverse("trunks:connection", args=[trunk.pk]))
    else:
        response = render(request, "trunks/connection.html", context)
    add_never_cache_headers(response)
    return response


def _render_created(request: HttpRequest, trunk: SipTrunk, password: str | None) -> HttpResponse:
    return render_with_password(request, trunk, password, heading=f"Trunk “{trunk.name}” created")


@workspace_required(Action.READ)
@require_GET
def connection(request: HttpRequest, trunk_id: int) -> HttpResponse:
    """The success screen, revisited: every detail but the password, which was shown once."""
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    context = {**connection_context(request, trunk), "heading": f"Connect your PBX to “{trunk.name}”"}
    return render(request, "trunks/connection.html", context)


@workspace_required(Action.READ)
@require_GET
def registration(request: HttpRequest, trunk_id: int) -> HttpResponse:
    """The live panel "Waiting for your PBX to register…", polled every second."""
    if not request.htmx:  # without JavaScript the connection page itself is the refresh
        return redirect("trunks:connection", trunk_id)
    trunk = trunk_get(tenant=request.tenant, trunk_id=trunk_id)
    return render(request, "trunks/connection.html#registration", registration_context(request, trunk))
