"""Writes for Agent Studio: agents and their Telephony tab (the agent ↔ trunk link).

Every change tells the SIP engines to reload: they answer calls with the agent's settings.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from smartalex.errors import ApplicationError
from smartalex.tenancy.models import Tenant
from trunks.config_version import config_changed
from trunks.models import SipTrunk

from .models import DEFAULT_MAX_CALL_SECONDS, DEFAULT_SILENCE_TIMEOUT_SECONDS, MAX_CALL_SECONDS_LIMIT, Agent
from .voices import LANGUAGES, VOICES

_EXTENSION = re.compile(r"^[A-Za-z0-9*#+._-]{1,32}$")


@dataclass(frozen=True)
class AgentSettings:
    """What a customer sets on an agent's Settings tab."""

    name: str
    first_message: str = ""
    system_prompt: str = ""
    voice: str = "en-us"
    language: str = "en-US"
    max_call_duration: int = DEFAULT_MAX_CALL_SECONDS
    silence_timeout: int = DEFAULT_SILENCE_TIMEOUT_SECONDS
    fallback_extension: str = ""

    @classmethod
    def of(cls, agent: Agent) -> AgentSettings:
        return cls(**{f.name: getattr(agent, f.name) for f in dataclasses.fields(cls)})


def _apply(agent: Agent, values: AgentSettings) -> None:
    name = values.name.strip()
    if not name:
        raise ApplicationError("Give the agent a name.", extra={"field": "name"})
    if Agent.objects.filter(tenant=agent.tenant, name__iexact=name).exclude(pk=agent.pk).exists():
        raise ApplicationError(
            f"This workspace already has an agent called “{name}”.", extra={"field": "name"}
        )
    if values.voice not in VOICES:
        raise ApplicationError(f"“{values.voice}” is not an available voice.", extra={"field": "voice"})
    if values.language not in LANGUAGES:
        raise ApplicationError(
            f"“{values.language}” is not an available language.", extra={"field": "language"}
        )
    if not 10 <= values.max_call_duration <= MAX_CALL_SECONDS_LIMIT:
        raise ApplicationError(
            f"Max call duration is 10 to {MAX_CALL_SECONDS_LIMIT:,} seconds (default {DEFAULT_MAX_CALL_SECONDS}).",
            extra={"field": "max_call_duration"},
        )
    extension = values.fallback_extension.strip()
    if extension and not _EXTENSION.match(extension):
        raise ApplicationError(
            "A fallback extension is the number dialled on your PBX, e.g. 100.",
            extra={"field": "fallback_extension"},
        )
    agent.name = name
    agent.first_message = values.first_message.strip()
    agent.system_prompt = values.system_prompt.strip()
    agent.voice = values.voice
    agent.language = values.language
    agent.max_call_duration = values.max_call_duration
    agent.silence_timeout = values.silence_timeout
    agent.fallback_extension = extension


def _save(agent: Agent) -> None:
    try:
        agent.full_clean(exclude=["tenant", "trunk"])
    except ValidationError as exc:
        raise ApplicationError(
            "The agent's settings are not valid.", extra={"fields": exc.message_dict}
        ) from exc
    try:
        with transaction.atomic():
            agent.save()
    except IntegrityError as exc:  # a concurrent save took the name or the trunk
        raise ApplicationError("Another change got there first: reload and try again.") from exc


@transaction.atomic
def agent_create(
    *, tenant: Tenant, values: AgentSettings, trunk: SipTrunk | None = None, move_trunk: bool = False
) -> Agent:
    agent = Agent(tenant=tenant)
    _apply(agent, values)
    _save(agent)
    if trunk is not None:
        agent_link_trunk(agent=agent, trunk=trunk, move=move_trunk)
    config_changed()
    return agent


@transaction.atomic
def agent_update(*, agent: Agent, values: AgentSettings) -> Agent:
    _apply(agent, values)
    _save(agent)
    config_changed()
    return agent


@transaction.atomic
def agent_link_trunk(*, agent: Agent, trunk: SipTrunk | None, move: bool = False) -> Agent:
    """The Telephony tab: this agent answers the trunk's calls (None unlinks).

    One agent per trunk. A trunk that already answers for another agent is moved only when the
    caller says so (`move`): silently taking it would leave the other agent without calls.
    """
    if trunk is not None and trunk.tenant_id != agent.tenant_id:
        raise ApplicationError("Trunk not found.", extra={"field": "trunk"}, status_code=404)
    if trunk is not None:
        current = Agent.objects.select_for_update().filter(trunk=trunk).exclude(pk=agent.pk).first()
        if current is not None:
            if not move:
                raise ApplicationError(
                    f"Trunk “{trunk.name}” already answers for agent “{current.name}”. "
                    "Choose to move it to this agent, or pick another trunk.",
                    extra={"field": "trunk", "linked_agent_id": current.pk, "linked_agent": current.name},
                    status_code=409,
                )
            current.trunk = None
            current.save(update_fields=["trunk", "updated_at"])
    agent.trunk = trunk
    try:
        with transaction.atomic():
            agent.save(update_fields=["trunk", "updated_at"])
    except IntegrityError as exc:
        raise ApplicationError(
            "That trunk was linked to another agent a moment ago: reload and try again.",
            extra={"field": "trunk"},
            status_code=409,
        ) from exc
    config_changed()
    return agent


@transaction.atomic
def agent_delete(*, agent: Agent) -> None:
    agent.delete()
    config_changed()
