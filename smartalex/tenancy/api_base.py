"""The one base for every workspace API endpoint: key auth, tenant scoping, roles and rate limit.

An endpoint subclasses `TenantScopedViewSet` (or `TenantScopedAPIView`) and gets a queryset
that is already filtered by the caller's workspace, so it cannot forget to scope
(PostHog's TeamAndOrgViewSetMixin; DESIGN.md convention 4). A test walks the URL
configuration and fails if an `/api/v1` view does not derive from `TenantScopedMixin`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import exceptions, permissions, throttling, viewsets
from rest_framework.request import Request
from rest_framework.views import APIView

from .models import ApiKey, Tenant
from .roles import Action, role_can


def resolve_tenant(request: Request) -> tuple[Tenant | None, str | None]:
    """The workspace and role of the caller: from the API key, or the session's membership."""
    if isinstance(request.auth, ApiKey):
        return request.auth.tenant, request.auth.role
    membership = getattr(request._request, "membership", None)
    if membership is not None and request.user.is_authenticated:
        return membership.tenant, membership.role
    return None, None


class TenantRolePermission(permissions.BasePermission):
    """Reads need membership; writes need the view's `write_action` for the caller's role."""

    message = "Your role in this workspace does not allow this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if request.tenant is None:
            raise exceptions.PermissionDenied("You are not a member of any workspace.")
        action = Action.READ if request.method in permissions.SAFE_METHODS else view.write_action
        return role_can(request.role, action)


class WorkspaceRateThrottle(throttling.SimpleRateThrottle):
    """The product's API limit is per workspace (60 requests/s), whichever key or user calls."""

    scope = "workspace"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        tenant = getattr(request, "tenant", None)
        return None if tenant is None else f"throttle:workspace:{tenant.pk}"


class TenantScopedMixin:
    """Resolves `request.tenant`/`request.role` before permissions and throttles run."""

    permission_classes = [TenantRolePermission]
    throttle_classes = [WorkspaceRateThrottle]
    write_action: Action = Action.MANAGE_TELEPHONY
    model: type[Model] | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)
        request.tenant, request.role = resolve_tenant(request)
        super().initial(request, *args, **kwargs)

    @property
    def tenant(self) -> Tenant:
        return self.request.tenant

    def get_queryset(self) -> QuerySet:
        assert self.model is not None, f"{type(self).__name__} must set `model`"
        if getattr(self, "swagger_fake_view", False):  # schema generation has no tenant
            return self.model.objects.none()
        return self.scoped_queryset(self.model.objects.filter(tenant=self.request.tenant))

    def scoped_queryset(self, queryset: QuerySet) -> QuerySet:
        """Override to narrow or annotate; `queryset` is already limited to the caller's workspace."""
        return queryset


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    pass


class TenantScopedAPIView(TenantScopedMixin, APIView):
    pass
