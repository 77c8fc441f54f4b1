"""Another workspace's ids answer exactly like missing ones, and change nothing."""

import pytest
from django.urls import reverse

from smartalex.tenancy.models import ApiKey
from smartalex.tenancy.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_key(other_tenant) -> ApiKey:
    key, _ = api_key_create(tenant=other_tenant, name="theirs")
    return key


def test_api_key_of_other_workspace_is_404_and_unchanged(api, foreign_key):
    detail = reverse("api-key-detail", args=[foreign_key.pk])
    missing = reverse("api-key-detail", args=[foreign_key.pk + 1000])
    assert api.get(detail).status_code == api.get(missing).status_code == 404
    assert api.get(detail).json() == api.get(missing).json()
    for method in ("put", "patch", "delete"):
        assert getattr(api, method)(detail, {"name": "x"}, format="json").status_code in (404, 405)
    assert api.post(reverse("api-key-revoke", args=[foreign_key.pk])).status_code == 404
    foreign_key.refresh_from_db()
    assert foreign_key.revoked_at is None and foreign_key.name == "theirs"


def test_api_key_list_does_not_leak(api, foreign_key):
    names = [k["name"] for k in api.get(reverse("api-key-list")).json()["results"]]
    assert "theirs" not in names


def test_revoke_page_ignores_other_workspace(owner_client, foreign_key):
    response = owner_client.post(reverse("api-key-revoke-page", args=[foreign_key.pk]))
    assert response.status_code == 404
    foreign_key.refresh_from_db()
    assert foreign_key.revoked_at is None


def test_api_keys_page_creates_a_key_shown_once(owner_client, tenant):
    page = owner_client.get(reverse("api-keys"))
    assert page.status_code == 200 and "No keys yet" in page.content.decode()
    created = owner_client.post(reverse("api-keys"), {"name": "zapier"}, HTTP_HX_REQUEST="true")
    body = created.content.decode()
    assert created.status_code == 200 and "will not be shown again" in body and "<html" not in body
    assert ApiKey.objects.get(tenant=tenant, name="zapier").prefix in body
    assert "will not be shown again" not in owner_client.get(reverse("api-keys")).content.decode()


def test_viewer_cannot_open_api_keys(client, member_factory):
    from smartalex.tenancy.models import Role

    client.force_login(member_factory(Role.VIEWER))
    assert client.get(reverse("api-keys")).status_code == 403
