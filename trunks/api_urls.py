"""This app's /api/v1 routes (included by smartalex/api_urls.py)."""

from rest_framework.routers import DefaultRouter

from .api import DidViewSet, TrunkViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("trunks", TrunkViewSet, basename="trunk")
router.register("dids", DidViewSet, basename="did")

urlpatterns = router.urls
