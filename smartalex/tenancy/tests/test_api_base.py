"""The API base: key auth, scoping, roles, the rate limit, and that no endpoint bypasses it."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from conftest import api_client_for
from smartalex.api_pagination import Pages
from smartalex.tenancy.api_base import TenantScopedMixin, WorkspaceRateThrottle
from smartalex.tenancy.models import ApiKey, Role

pytestmark = pytest.mark.django_db


def _api_views(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
            yield route, getattr(pattern.callback, "cls", None)


def test_every_api_v1_view_derives_from_the_tenant_scoped_base():
    views = list(_api_views(get_resolver()))
    assert views, "no /api/v1 routes found"
    bypassing = [route for route, cls in views if cls is None or not issubclass(cls, TenantScopedMixin)]
    assert bypassing == []


def test_key_identifies_the_workspace(api, tenant):
    response = api.get(reverse("api-workspace"))
    assert response.status_code == 200
    assert response.json() == {"id": tenant.pk, "name": "Acme Dental", "role": "admin"}


@pytest.mark.parametrize("header", ["Bearer sak_nope_nope", "Bearer", "Bearer a b", "Bearer sak_x"])
def test_bad_keys_are_refused(db, header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(reverse("api-workspace"))
    assert response.status_code == 401
    assert set(response.json()) == {"message", "extra"}


def test_revoked_key_is_refused(api, tenant):
    key = ApiKey.objects.get(tenant=tenant)
    assert api.post(reverse("api-key-revoke", args=[key.pk])).status_code == 200
    assert api.get(reverse("api-workspace")).status_code == 401


def test_no_credentials_is_401(db):
    assert APIClient().get(reverse("api-workspace")).status_code in (401, 403)


def test_session_user_uses_current_workspace(owner_client, tenant):
    assert owner_client.get(reverse("api-workspace")).json()["id"] == tenant.pk


def test_viewer_key_reads_but_cannot_write(tenant):
    viewer = api_client_for(tenant, Role.VIEWER)
    assert viewer.get(reverse("api-key-list")).status_code == 200
    response = viewer.post(reverse("api-key-list"), {"name": "sneaky"}, format="json")
    assert response.status_code == 403
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_rate_limit_answers_429_per_workspace(api, other_api, monkeypatch):
    monkeypatch.setattr(WorkspaceRateThrottle, "THROTTLE_RATES", {"workspace": "3/min"})
    codes = [api.get(reverse("api-workspace")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = api.get(reverse("api-workspace"))
    assert limited.json()["message"].startswith("Too many requests") and "Retry-After" in limited
    # Another workspace has its own budget.
    assert other_api.get(reverse("api-workspace")).status_code == 200


@pytest.mark.parametrize("limit", ["100000000000000000000000", "9223372036854775807", "501"])
def test_a_huge_page_is_cut_to_the_largest_page_not_a_server_error(api, limit):
    response = api.get(reverse("api-key-list"), {"limit": limit, "offset": "0"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
    assert Pages().get_limit(Request(APIRequestFactory().get("/", {"limit": limit}))) == 500
