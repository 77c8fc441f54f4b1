"""Agent Studio pages: the agents, each agent's Settings tab and Telephony tab. Thin: forms parse,
services write, selectors read. A Manager edits agents; a Viewer only reads."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from smartalex.errors import ApplicationError
from smartalex.tenancy.decorators import workspace_required
from smartalex.tenancy.roles import Action
from trunks.forms import add_application_error

from .forms import AgentSettingsForm, TelephonyForm
from .models import Agent
from .selectors import agent_get, agent_list, agent_problems
from .services import agent_create, agent_delete, agent_link_trunk, agent_update

READ_OR_MANAGE = {"action": Action.READ, "write": Action.MANAGE_DIRECTORY}


@workspace_required(**READ_OR_MANAGE)
@require_GET
def agent_list_view(request: HttpRequest) -> HttpResponse:
    agents = [(a, agent_problems(agent=a)) for a in agent_list(tenant=request.tenant)]
    return render(request, "agents/list.html", {"agents": agents})


@workspace_required(Action.MANAGE_DIRECTORY)
@require_http_methods(["GET", "POST"])
def agent_create_view(request: HttpRequest) -> HttpResponse:
    form = AgentSettingsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            agent = agent_create(tenant=request.tenant, values=form.to_settings())
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, f"Agent “{agent.name}” created. Now link it to a trunk.")
            return redirect("agents:telephony", agent.pk)
    return render(request, "agents/settings.html", {"form": form, "agent": None, "tab": "settings"})


@workspace_required(**READ_OR_MANAGE)
@require_http_methods(["GET", "POST"])
def agent_settings_view(request: HttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_get(tenant=request.tenant, agent_id=agent_id)
    form = AgentSettingsForm(request.POST or None, agent=agent)
    saved = False
    if request.method == "POST" and form.is_valid():
        try:
            agent = agent_update(agent=agent, values=form.to_settings())
            saved = True
        except ApplicationError as exc:
            add_application_error(form, exc)
            agent.refresh_from_db()
    context = _context(agent, form=form, saved=saved, tab="settings")
    template = "agents/settings.html#settings-form" if request.htmx else "agents/settings.html"
    return render(request, template, context)


@workspace_required(**READ_OR_MANAGE)
@require_http_methods(["GET", "POST"])
def agent_telephony_view(request: HttpRequest, agent_id: int) -> HttpResponse:
    """Agent Studio → Telephony tab → pick the trunk in the dropdown → Save."""
    agent = agent_get(tenant=request.tenant, agent_id=agent_id)
    form = TelephonyForm(request.POST or None, tenant=request.tenant, agent=agent)
    saved = False
    if request.method == "POST" and form.is_valid():
        try:
            agent = agent_link_trunk(
                agent=agent, trunk=form.cleaned_data["trunk"], move=form.cleaned_data["move_trunk"]
            )
            saved = True
            form = TelephonyForm(tenant=request.tenant, agent=agent)
        except ApplicationError as exc:
            add_application_error(form, exc)
            agent.refresh_from_db()
    context = _context(agent, form=form, saved=saved, tab="telephony")
    template = "agents/telephony.html#telephony-form" if request.htmx else "agents/telephony.html"
    return render(request, template, context)


@workspace_required(Action.MANAGE_DIRECTORY)
@require_http_methods(["GET", "POST"])
def agent_delete_view(request: HttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_get(tenant=request.tenant, agent_id=agent_id)
    if request.method == "POST":
        name = agent.name
        agent_delete(agent=agent)
        messages.success(request, f"Agent “{name}” deleted.")
        return redirect("agents:list")
    return render(request, "agents/delete.html", {"agent": agent})


def _context(agent: Agent, **extra) -> dict:
    return {"agent": agent, "problems": agent_problems(agent=agent), **extra}
