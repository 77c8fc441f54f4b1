"""Every trunk page with the other workspace's ids answers 404 and changes nothing; lists don't leak."""

import pytest
from django.urls import reverse

from trunks.models import Did, SipTrunk

pytestmark = pytest.mark.django_db

GET_PAGES = ["detail", "connection", "status", "history", "delete"]
POST_ACTIONS = ["settings", "suspend", "reactivate", "regenerate-password", "delete", "did-add"]


def snapshot(trunk: SipTrunk) -> tuple:
    trunk.refresh_from_db()
    return (
        trunk.name,
        trunk.pbx_domain,
        trunk.ha1_md5,
        trunk.suspended_at,
        sorted(trunk.dids.values_list("number", flat=True)),
    )


@pytest.mark.parametrize("name", GET_PAGES)
def test_get_of_another_workspaces_trunk_is_404(owner_client, other_trunk, name):
    headers = {"HTTP_HX_REQUEST": "true"}
    assert owner_client.get(reverse(f"trunks:{name}", args=[other_trunk.pk]), **headers).status_code == 404
    assert owner_client.get(reverse(f"trunks:{name}", args=[other_trunk.pk + 999])).status_code == 404


def test_registration_panel_of_another_workspace_is_404(owner_client, other_trunk):
    url = reverse("trunks:registration", args=[other_trunk.pk])
    assert owner_client.get(url, HTTP_HX_REQUEST="true").status_code == 404


@pytest.mark.parametrize("name", POST_ACTIONS)
def test_post_to_another_workspaces_trunk_is_404_and_changes_nothing(owner_client, other_trunk, name):
    before = snapshot(other_trunk)
    data = {
        "name": "Hijacked",
        "pbx_domain": "evil.test",
        "number": "+14155550100",
        "pbx_vendor": "other",
        "auth_type": "credentials",
        "codec_preset": "PCMU,PCMA",
        "transport": "udp",
        "max_concurrent_calls": 5,
    }
    assert owner_client.post(reverse(f"trunks:{name}", args=[other_trunk.pk]), data).status_code == 404
    assert SipTrunk.objects.filter(pk=other_trunk.pk).exists()
    assert snapshot(other_trunk) == before


def test_did_removal_across_workspaces_is_404(owner_client, trunk, other_trunk):
    theirs = other_trunk.dids.get()
    # Their DID through their trunk, and their DID through my trunk's URL.
    assert (
        owner_client.post(reverse("trunks:did-remove", args=[other_trunk.pk, theirs.pk])).status_code == 404
    )
    assert owner_client.post(reverse("trunks:did-remove", args=[trunk.pk, theirs.pk])).status_code == 404
    assert Did.objects.filter(pk=theirs.pk).exists()


def test_phone_numbers_cannot_add_to_another_workspaces_trunk(owner_client, trunk, other_trunk):
    response = owner_client.post(
        reverse("trunks:phone-numbers"), {"number": "+14155550100", "trunk": other_trunk.pk}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Did.objects.filter(number="+14155550100").exists()


def test_lists_do_not_leak(owner_client, trunk, other_trunk):
    for name in ("trunks:list", "trunks:phone-numbers"):
        page = owner_client.get(reverse(name)).content.decode()
        assert "Globex" not in page and "+27215550199" not in page, name
    assert "Main office" in owner_client.get(reverse("trunks:list")).content.decode()
