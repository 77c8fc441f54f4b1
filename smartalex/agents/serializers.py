"""API shapes of agents. `trunk` is checked against the caller's own trunks: another workspace's id
is refused exactly like a missing one."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from trunks.models import SipTrunk

from .models import DEFAULT_MAX_CALL_SECONDS, DEFAULT_SILENCE_TIMEOUT_SECONDS, MAX_CALL_SECONDS_LIMIT, Agent
from .selectors import agent_problems
from .voices import LANGUAGE_CHOICES, VOICE_CHOICES


class WorkspaceTrunkField(serializers.PrimaryKeyRelatedField):
    """A trunk id of the caller's workspace (set by the view in the serializer context)."""

    def get_queryset(self) -> QuerySet[SipTrunk]:
        tenant = self.context.get("tenant")
        return SipTrunk.objects.filter(tenant=tenant) if tenant is not None else SipTrunk.objects.none()


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class AgentSerializer(serializers.ModelSerializer):
    voice = serializers.ChoiceField(choices=VOICE_CHOICES, default="en-us")
    language = serializers.ChoiceField(choices=LANGUAGE_CHOICES, default="en-US")
    max_call_duration = serializers.IntegerField(
        min_value=10,
        max_value=MAX_CALL_SECONDS_LIMIT,
        default=DEFAULT_MAX_CALL_SECONDS,
        help_text=f"Seconds, default {DEFAULT_MAX_CALL_SECONDS}, up to {MAX_CALL_SECONDS_LIMIT}",
    )
    silence_timeout = serializers.IntegerField(
        min_value=5, max_value=600, default=DEFAULT_SILENCE_TIMEOUT_SECONDS
    )
    trunk = WorkspaceTrunkField(
        allow_null=True,
        required=False,
        help_text="The trunk whose calls this agent answers (one agent per trunk)",
    )
    move_trunk = serializers.BooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="If the trunk already answers for another agent, move it here (otherwise: 409)",
    )
    problems = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "first_message",
            "system_prompt",
            "voice",
            "language",
            "max_call_duration",
            "silence_timeout",
            "fallback_extension",
            "trunk",
            "move_trunk",
            "problems",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "problems", "created_at", "updated_at"]
        # The workspace-wide name rule is checked by the service (case-insensitively).
        validators: list = []

    @extend_schema_field(ProblemSerializer(many=True))
    def get_problems(self, agent: Agent) -> list[dict]:
        """The troubleshooting guide's causes that apply now (not linked, no greeting, trunk issues)."""
        return [{"code": p.code, "message": p.message} for p in agent_problems(agent=agent)]
