"""This app's /api/v1 routes (included by smartalex/api_urls.py)."""

urlpatterns: list = []
