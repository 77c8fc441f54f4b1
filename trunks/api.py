"""/api/v1/trunks and /api/v1/dids, on the one tenant-scoped base (scoping, roles, rate limit).

Serializers parse; the services in services.py do every write, exactly as the wizard does.
"""

from __future__ import annotations

import dataclasses

from django.db.models import QuerySet
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from smartalex.errors import ApplicationError
from smartalex.tenancy.api_base import TenantScopedViewSet
from smartalex.tenancy.roles import Action

from .models import Did, SipTrunk
from .selectors import did_get, trunk_events
from .serializers import (
    DidCreateSerializer,
    DidSerializer,
    TrunkEventSerializer,
    TrunkSerializer,
    TrunkWithPasswordSerializer,
)
from .services import (
    TrunkSettings,
    did_add,
    did_remove,
    trunk_create,
    trunk_delete,
    trunk_reactivate,
    trunk_regenerate_password,
    trunk_suspend,
    trunk_update,
)

SETTINGS_FIELDS = tuple(f.name for f in dataclasses.fields(TrunkSettings))


def _settings_changes(data: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in SETTINGS_FIELDS}


# Error reports (and anything else that prints request.POST) mask the password.
@method_decorator(sensitive_post_parameters("auth_password"), name="dispatch")
class TrunkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """SIP trunks: create one (the response carries its password once), read its status, change it."""

    model = SipTrunk
    serializer_class = TrunkSerializer
    write_action = Action.MANAGE_TELEPHONY
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("status", "agent").prefetch_related("dids").order_by("name")

    def _fresh(self, trunk: SipTrunk) -> SipTrunk:
        return self.get_queryset().get(pk=trunk.pk)

    def _with_password(self, trunk: SipTrunk, password: str | None, code: int = 200) -> Response:
        context = {**self.get_serializer_context(), "password": password}
        response = Response(
            TrunkWithPasswordSerializer(self._fresh(trunk), context=context).data, status=code
        )
        add_never_cache_headers(response)  # a password must not sit in any cache
        return response

    @extend_schema(request=TrunkSerializer, responses={201: TrunkWithPasswordSerializer})
    def create(self, request: Request) -> Response:
        serializer = TrunkSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        trunk, password = trunk_create(
            tenant=self.tenant,
            values=TrunkSettings(**_settings_changes(data)),
            username=data.get("auth_username") or None,
            password=data.get("auth_password") or None,
        )
        return self._with_password(trunk, password, status.HTTP_201_CREATED)

    @extend_schema(request=TrunkSerializer, responses=TrunkSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        trunk = self.get_object()
        serializer = TrunkSerializer(
            trunk, data=request.data, partial=True, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        for field in ("auth_username", "auth_password"):
            if field in serializer.validated_data:
                raise ApplicationError(
                    "Credentials cannot be edited: use POST regenerate-password for a new password.",
                    extra={"field": field},
                )
        values = dataclasses.replace(TrunkSettings.of(trunk), **_settings_changes(serializer.validated_data))
        trunk_update(trunk=trunk, values=values)
        return Response(TrunkSerializer(self._fresh(trunk), context=self.get_serializer_context()).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        trunk_delete(trunk=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=TrunkWithPasswordSerializer)
    @action(detail=True, methods=["post"], url_path="regenerate-password")
    def regenerate_password(self, request: Request, pk: str) -> Response:
        """A new password replaces the old one at once; it is in this response only."""
        trunk = self.get_object()
        password = trunk_regenerate_password(trunk=trunk)
        return self._with_password(trunk, password)

    @extend_schema(request=None, responses=TrunkSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str) -> Response:
        trunk = trunk_suspend(trunk=self.get_object())
        return Response(TrunkSerializer(self._fresh(trunk), context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=TrunkSerializer)
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: str) -> Response:
        trunk = trunk_reactivate(trunk=self.get_object())
        return Response(TrunkSerializer(self._fresh(trunk), context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=TrunkEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk: str) -> Response:
        """The trunk's history, newest first: registrations, refreshes, expiries, failures, reachability."""
        page = self.paginate_queryset(trunk_events(trunk=self.get_object()))
        return self.get_paginated_response(TrunkEventSerializer(page, many=True).data)

    @extend_schema(methods=["GET"], request=None, responses=DidSerializer(many=True))
    @extend_schema(methods=["POST"], request=DidCreateSerializer, responses={201: DidSerializer})
    @action(detail=True, methods=["get", "post"])
    def dids(self, request: Request, pk: str) -> Response:
        trunk = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(trunk.dids.select_related("trunk__agent").order_by("number"))
            return self.get_paginated_response(DidSerializer(page, many=True).data)
        serializer = DidCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        did = did_add(trunk=trunk, number=serializer.validated_data["number"])
        return Response(DidSerializer(did).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Removed")})
    @action(detail=True, methods=["delete"], url_path=r"dids/(?P<did_id>[0-9]+)", url_name="did-detail")
    def did_detail(self, request: Request, pk: str, did_id: str) -> Response:
        trunk = self.get_object()
        did_remove(did=did_get(tenant=self.tenant, did_id=int(did_id), trunk=trunk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DidViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Every DID of the workspace, with its trunk and agent (add and remove them on a trunk)."""

    model = Did
    serializer_class = DidSerializer
    write_action = Action.MANAGE_TELEPHONY

    def scoped_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("trunk", "trunk__agent").order_by("number")
