from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from smartalex.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("smartalex.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("trunks.urls")),
    path("", include("extensions.urls")),
    path("agents/", include("smartalex.agents.urls")),
    path("", include("support.urls")),
    path("", include("calls.urls")),
    path("", include("smartalex.tenancy.urls")),
]
