"""Reads for Agent Studio, always scoped by workspace."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse

from smartalex.tenancy.models import Tenant
from trunks.selectors import Problem, trunk_problems

from .models import Agent


def agent_list(*, tenant: Tenant) -> QuerySet[Agent]:
    return Agent.objects.filter(tenant=tenant).select_related("trunk", "trunk__status").order_by("name")


def agent_get(*, tenant: Tenant, agent_id: int) -> Agent:
    """Another workspace's agent and a missing one look the same: 404."""
    return get_object_or_404(agent_list(tenant=tenant), pk=agent_id)


def agent_problems(*, agent: Agent) -> list[Problem]:
    """The troubleshooting guide's causes that apply to this agent right now."""
    problems: list[Problem] = []
    if agent.pk and agent.trunk_id is None:
        problems.append(
            Problem(
                "not_linked",
                "This agent is not linked to a trunk: no call reaches it.",
                "Telephony tab → select the trunk",
                reverse("agents:telephony", args=[agent.pk]),
            )
        )
    if not agent.first_message.strip() and not agent.system_prompt.strip():
        problems.append(
            Problem(
                "no_greeting",
                "No first message and no system prompt: the AI answers, then hangs up at once.",
                "Add a first message or a system prompt",
                reverse("agents:settings", args=[agent.pk]) if agent.pk else "",
            )
        )
    if agent.trunk is not None:
        problems += trunk_problems(trunk=agent.trunk, include_agent=False)
    return problems
