import pytest

from calls.models import Call
from conftest import api_client_for
from smartalex.tenancy.models import Role

pytestmark = pytest.mark.django_db


def test_list_returns_this_workspace_calls_only(api, call, other_call):
    response = api.get("/api/v1/calls/")
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert ids == [call.pk]
    row = response.json()["results"][0]
    assert row["outcome"] == "transferred" and row["transfer_status"] == 200 and row["refer_delay_ms"] == 20
    assert row["understanding"]["extension"] == "102"


def test_filter_by_trunk(api, call, trunk, other_trunk):
    assert api.get("/api/v1/calls/", {"trunk": trunk.pk}).json()["count"] == 1
    assert api.get("/api/v1/calls/", {"trunk": other_trunk.pk}).json()["count"] == 0


def test_retrieve_and_cross_workspace_404(api, call, other_call):
    assert api.get(f"/api/v1/calls/{call.pk}/").json()["caller"] == "+27825550123"
    assert api.get(f"/api/v1/calls/{other_call.pk}/").status_code == 404


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_writes_on_another_workspace_call_change_nothing(api, other_call, method):
    before = Call.objects.get(pk=other_call.pk).updated_at
    response = getattr(api, method)(f"/api/v1/calls/{other_call.pk}/", {"outcome": "answered"}, format="json")
    assert response.status_code in (404, 405)
    assert Call.objects.get(pk=other_call.pk).updated_at == before


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_records_are_read_only_even_for_an_admin(api, call, method):
    url = "/api/v1/calls/" if method == "post" else f"/api/v1/calls/{call.pk}/"
    response = getattr(api, method)(url, {"outcome": "answered"}, format="json")
    assert response.status_code == 405
    assert Call.objects.get(pk=call.pk).outcome == "transferred" and Call.objects.count() == 1


def test_a_viewer_reads_but_cannot_write(tenant, call):
    viewer = api_client_for(tenant, Role.VIEWER)
    assert viewer.get("/api/v1/calls/").status_code == 200
    assert viewer.delete(f"/api/v1/calls/{call.pk}/").status_code == 403
    assert Call.objects.filter(pk=call.pk).exists()


def test_without_a_key_is_refused(client, call):
    assert client.get("/api/v1/calls/").status_code in (401, 403)
