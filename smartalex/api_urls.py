"""/api/v1: every endpoint here derives from the tenant-scoped base (a test checks it)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from smartalex.tenancy.api import ApiKeyViewSet, WorkspaceView

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("workspace/", WorkspaceView.as_view(), name="api-workspace"),
    *router.urls,
    path("", include("trunks.api_urls")),
    path("", include("extensions.api_urls")),
    path("", include("smartalex.agents.api_urls")),
    path("", include("calls.api_urls")),
]
