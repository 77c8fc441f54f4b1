"""/api/v1/calls: the workspace's call records (list, retrieve), on the tenant-scoped base."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, serializers

from smartalex.tenancy.api_base import TenantScopedViewSet
from smartalex.tenancy.roles import Action

from .models import Call


class CallSerializer(serializers.ModelSerializer):
    trunk_id = serializers.IntegerField(read_only=True, allow_null=True)
    agent_id = serializers.IntegerField(read_only=True, allow_null=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    refer_delay_ms = serializers.IntegerField(read_only=True, allow_null=True)
    ringing_delay_ms = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Call
        fields = [
            "id",
            "trunk_id",
            "agent_id",
            "sip_call_id",
            "did",
            "caller",
            "caller_name",
            "outcome",
            "sip_status",
            "reason",
            "hangup_reason",
            "codec",
            "dtmf",
            "transfer_target",
            "transfer_method",
            "transfer_status",
            "transfer_reason",
            "transfer_requested_at",
            "transfer_sent_at",
            "transfer_ringing_at",
            "refer_delay_ms",
            "ringing_delay_ms",
            "understanding",
            "invited_at",
            "answered_at",
            "ended_at",
            "duration_seconds",
        ]
        read_only_fields = fields


class CallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Call records, newest first; `?trunk=<id>` for one trunk's. Read-only: the engine writes them."""

    model = Call
    serializer_class = CallSerializer
    write_action = Action.MANAGE_TELEPHONY

    def scoped_queryset(self, queryset: QuerySet) -> QuerySet:
        trunk = self.request.query_params.get("trunk", "")
        if trunk.isdigit():
            queryset = queryset.filter(trunk_id=int(trunk))
        return queryset.order_by("-invited_at", "-id")
