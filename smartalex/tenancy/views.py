"""Sign-up, login, workspace switching, the home page and API keys (htmx pages)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from smartalex.errors import ApplicationError

from .decorators import workspace_required
from .forms import ApiKeyForm, EmailAuthenticationForm, SignupForm
from .middleware import SESSION_KEY
from .models import ApiKey
from .roles import Action
from .selectors import membership_get
from .services import api_key_create, api_key_revoke, workspace_create


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant, user = workspace_create(
                name=form.cleaned_data["workspace_name"],
                owner_email=form.cleaned_data["email"],
                owner_password=form.cleaned_data["password"],
            )
        except ApplicationError as exc:
            form.add_error(
                exc.extra.get("field") if exc.extra.get("field") != "name" else "workspace_name", exc.message
            )
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_KEY] = tenant.pk
            return redirect("home")
    return render(request, "tenancy/signup.html", {"form": form})


class EmailLoginView(LoginView):
    form_class = EmailAuthenticationForm
    redirect_authenticated_user = True


@login_required
@require_POST
def switch_workspace(request: HttpRequest) -> HttpResponse:
    membership = membership_get(user=request.user, tenant_id=int(request.POST.get("tenant_id", 0) or 0))
    request.session[SESSION_KEY] = membership.tenant_id
    return redirect("home")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.tenant is None:
        return render(request, "tenancy/no_workspace.html")
    return render(request, "tenancy/home.html", {"dashboard": _dashboard(request)})


def _dashboard(request: HttpRequest) -> dict:
    # Other apps contribute counts when they exist; the home page invites the first step.
    from trunks.selectors import trunk_counts

    return trunk_counts(tenant=request.tenant)


@workspace_required(Action.MANAGE_TELEPHONY)
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        _, new_key = api_key_create(tenant=request.tenant, name=form.cleaned_data["name"])
        form = ApiKeyForm()
    keys = ApiKey.objects.filter(tenant=request.tenant, revoked_at__isnull=True).order_by("-created_at")
    template = "tenancy/api_keys.html#keys" if request.htmx else "tenancy/api_keys.html"
    return render(request, template, {"form": form, "keys": keys, "new_key": new_key})


@workspace_required(Action.MANAGE_TELEPHONY)
@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, tenant=request.tenant, pk=key_id, revoked_at__isnull=True)
    api_key_revoke(tenant=request.tenant, key_id=key.pk)
    messages.success(request, "API key revoked.")
    return redirect(reverse("api-keys"))
