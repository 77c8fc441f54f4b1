"""/api/v1/agents on the one tenant-scoped base. Managers edit agents; Viewers only read."""

from __future__ import annotations

import dataclasses

from django.db import transaction
from django.db.models import QuerySet
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from smartalex.tenancy.api_base import TenantScopedViewSet
from smartalex.tenancy.roles import Action

from .models import Agent
from .serializers import AgentSerializer
from .services import AgentSettings, agent_create, agent_delete, agent_link_trunk, agent_update

SETTINGS_FIELDS = tuple(f.name for f in dataclasses.fields(AgentSettings))


class AgentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = Agent
    serializer_class = AgentSerializer
    write_action = Action.MANAGE_DIRECTORY

    def scoped_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("trunk", "trunk__status").order_by("name")

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "tenant": getattr(self.request, "tenant", None)}

    def _out(self, agent: Agent, code: int = status.HTTP_200_OK) -> Response:
        agent = self.get_queryset().get(pk=agent.pk)
        return Response(AgentSerializer(agent, context=self.get_serializer_context()).data, status=code)

    @transaction.atomic
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        agent = agent_create(
            tenant=self.tenant,
            values=AgentSettings(**{k: v for k, v in data.items() if k in SETTINGS_FIELDS}),
            trunk=data.get("trunk"),
            move_trunk=data.get("move_trunk", False),
        )
        return self._out(agent, status.HTTP_201_CREATED)

    @transaction.atomic
    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        """Settings and the Telephony tab's trunk together: all of it applies, or none."""
        agent = self.get_object()
        serializer = self.get_serializer(agent, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        changes = {k: v for k, v in data.items() if k in SETTINGS_FIELDS}
        if changes:
            agent = agent_update(agent=agent, values=dataclasses.replace(AgentSettings.of(agent), **changes))
        if "trunk" in data:
            agent = agent_link_trunk(agent=agent, trunk=data.get("trunk"), move=data.get("move_trunk", False))
        return self._out(agent)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        agent_delete(agent=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
