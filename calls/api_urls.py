from rest_framework.routers import DefaultRouter

from .api import CallViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("calls", CallViewSet, basename="call")

urlpatterns = router.urls
