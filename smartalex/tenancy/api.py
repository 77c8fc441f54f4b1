"""API endpoints of the tenancy app: the current workspace and its API keys."""

from __future__ import annotations

from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .api_base import TenantScopedAPIView, TenantScopedViewSet
from .models import ApiKey
from .roles import Action
from .services import api_key_create, api_key_revoke


class WorkspaceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.CharField()


class WorkspaceView(TenantScopedAPIView):
    """The workspace the caller's key or session belongs to."""

    serializer_class = WorkspaceSerializer

    def get(self, request: Request) -> Response:
        return Response(
            WorkspaceSerializer({"id": self.tenant.pk, "name": self.tenant.name, "role": request.role}).data
        )


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "role", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "role", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown once, never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, TenantScopedViewSet
):
    model = ApiKey
    serializer_class = ApiKeySerializer
    write_action = Action.MANAGE_TELEPHONY

    def scoped_queryset(self, queryset):
        return queryset.order_by("-created_at")

    def create(self, request: Request) -> Response:
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw = api_key_create(tenant=self.tenant, name=serializer.validated_data["name"])
        key.key = raw
        return Response(ApiKeyCreatedSerializer(key).data, status=201)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        key = self.get_object()
        api_key_revoke(tenant=self.tenant, key_id=key.pk)
        key.refresh_from_db()
        return Response(ApiKeySerializer(key).data)
