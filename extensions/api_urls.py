"""This app's /api/v1 routes (included by smartalex/api_urls.py)."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from .api import ExtensionExportView, ExtensionImportView, ExtensionViewSet

router = SimpleRouter(trailing_slash=True)
router.register(r"trunks/(?P<trunk_id>\d+)/extensions", ExtensionViewSet, basename="extension")

urlpatterns = [
    # Before the router, and with or without a trailing slash (the product documents none).
    re_path(
        r"^trunks/(?P<trunk_id>\d+)/extensions/import/?$",
        ExtensionImportView.as_view(),
        name="extension-import",
    ),
    re_path(
        r"^trunks/(?P<trunk_id>\d+)/extensions/export/?$",
        ExtensionExportView.as_view(),
        name="extension-export",
    ),
    *router.urls,
]
