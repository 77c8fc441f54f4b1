import pytest
from django.urls import reverse

from calls.models import Call
from smartalex.tenancy.models import Role

pytestmark = pytest.mark.django_db


def test_list_shows_the_workspace_calls_only(owner_client, call, other_call):
    page = owner_client.get(reverse("calls:list")).content.decode()
    assert "+27825550123" in page and "Transferred" in page
    assert "+4420700000" not in page


def test_list_filters_by_trunk_and_serves_the_partial_to_htmx(owner_client, call, trunk):
    response = owner_client.get(reverse("calls:list"), {"trunk": trunk.pk}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="call-rows"')
    assert "<html" not in body and "+27825550123" in body


def test_filter_by_another_workspace_trunk_is_404(owner_client, other_trunk, other_call):
    assert owner_client.get(reverse("calls:list"), {"trunk": other_trunk.pk}).status_code == 404


def test_detail_shows_outcome_transfer_and_understanding(owner_client, call):
    page = owner_client.get(reverse("calls:detail", args=[call.pk])).content.decode()
    assert "Transferred" in page and "John Smith please" in page
    assert "20 ms" in page and "200 ms" in page  # request → REFER, request → 180


def test_detail_of_another_workspace_call_is_404_and_unchanged(owner_client, other_call):
    before = Call.objects.get(pk=other_call.pk).updated_at
    assert owner_client.get(reverse("calls:detail", args=[other_call.pk])).status_code == 404
    assert owner_client.post(reverse("calls:detail", args=[other_call.pk])).status_code in (404, 405)
    assert Call.objects.get(pk=other_call.pk).updated_at == before


def test_a_viewer_reads_but_cannot_post(client, member_factory, call):
    client.force_login(member_factory(Role.VIEWER))
    assert client.get(reverse("calls:detail", args=[call.pk])).status_code == 200
    assert client.post(reverse("calls:list")).status_code in (403, 405)
    assert Call.objects.count() == 1


def test_pages_need_a_login(client, call):
    response = client.get(reverse("calls:list"))
    assert response.status_code == 302 and "login" in response["Location"]
