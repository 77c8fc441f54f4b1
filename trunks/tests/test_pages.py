"""Trunk list and detail (status, settings, DIDs, history, actions) and the Phone Numbers page."""

import pytest
from django.urls import reverse

from conftest import make_member
from smartalex.agents.models import Agent
from smartalex.tenancy.models import Role
from trunks.models import Did, SipTrunk

from .factories import add_event, make_trunk, set_registered

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def settings_data(trunk, **overrides):
    data = {
        "pbx_vendor": trunk.pbx_vendor,
        "name": trunk.name,
        "pbx_domain": trunk.pbx_domain,
        "auth_type": trunk.auth_type,
        "allowed_ips": "",
        "codec_preset": ",".join(trunk.codecs),
        "transport": trunk.transport,
        "max_concurrent_calls": trunk.max_concurrent_calls,
    }
    data.update(overrides)
    return data


def test_list_shows_status_badges(owner_client, tenant):
    registered, _ = make_trunk(tenant, "Registered one")
    set_registered(registered)
    make_trunk(tenant, "Waiting one")
    page = owner_client.get(reverse("trunks:list")).content.decode()
    assert '<span class="badge registered">Registered</span>' in page
    assert '<span class="badge not_registered">Not registered</span>' in page


def test_detail_shows_status_details_and_troubleshooting(owner_client, trunk):
    set_registered(
        trunk,
        contact="<sip:x@192.168.1.20:5060>",
        options_latency_ms=23.4,
        last_failure="wrong_password",
    )
    add_event(trunk, "auth_failed", 30, reason="wrong_password", source="203.0.113.10:5060", transport="udp")
    page = owner_client.get(reverse("trunks:detail", args=[trunk.pk])).content.decode()
    assert 'id="status-badge">Registered<' in page
    for text in (
        "203.0.113.10:5060",
        "3CXPhoneSystem 20.0.1",
        "23 ms",
        "wrong password",
        "SIP ALG suspected",
    ):
        assert text in page, text
    assert "Rejected: wrong password" in page  # history
    for code in ("no_agent", "no_did"):
        assert f'data-problem="{code}"' in page


def test_status_partial_updates_live(owner_client, trunk):
    url = reverse("trunks:status", args=[trunk.pk])
    assert 'data-state="not_registered"' in owner_client.get(url, **HTMX).content.decode()
    set_registered(trunk, state="unreachable")
    partial = owner_client.get(url, **HTMX).content.decode()
    assert (
        'data-state="unreachable"' in partial
        and 'hx-trigger="every 500ms"' in partial  # not registered: poll fast, to flip within 1 s
        and "<html" not in partial
    )
    set_registered(trunk)
    assert 'hx-trigger="every 2s"' in owner_client.get(url, **HTMX).content.decode()


def test_history_partial(owner_client, trunk):
    add_event(trunk, "expired")
    partial = owner_client.get(reverse("trunks:history", args=[trunk.pk]), **HTMX).content.decode()
    assert "Registration expired" in partial and "<html" not in partial


def test_settings_edit_with_htmx(owner_client, trunk):
    url = reverse("trunks:settings", args=[trunk.pk])
    response = owner_client.post(
        url, settings_data(trunk, pbx_domain="new.acme.test", max_concurrent_calls=25), **HTMX
    )
    assert "Settings saved." in response.content.decode()
    trunk.refresh_from_db()
    assert trunk.pbx_domain == "new.acme.test" and trunk.max_concurrent_calls == 25
    bad = owner_client.post(url, settings_data(trunk, pbx_domain="bad domain"), **HTMX).content.decode()
    assert "not a valid hostname" in bad
    trunk.refresh_from_db()
    assert trunk.pbx_domain == "new.acme.test"


def test_settings_edit_without_javascript_redirects(owner_client, trunk):
    response = owner_client.post(
        reverse("trunks:settings", args=[trunk.pk]), settings_data(trunk, name="Renamed")
    )
    assert response.status_code == 302
    trunk.refresh_from_db()
    assert trunk.name == "Renamed"


def test_suspend_and_reactivate(owner_client, trunk):
    owner_client.post(reverse("trunks:suspend", args=[trunk.pk]))
    trunk.refresh_from_db()
    assert trunk.is_suspended
    page = owner_client.get(reverse("trunks:detail", args=[trunk.pk])).content.decode()
    assert 'data-problem="suspended"' in page and "Reactivate" in page
    owner_client.post(reverse("trunks:reactivate", args=[trunk.pk]))
    trunk.refresh_from_db()
    assert not trunk.is_suspended


def test_regenerate_shows_the_new_password_once(owner_client, trunk):
    old_hash = trunk.ha1_md5
    response = owner_client.post(reverse("trunks:regenerate-password", args=[trunk.pk]))
    page = response.content.decode()
    password = page.split('<code id="conn-auth-password">')[1].split("</code>")[0]
    trunk.refresh_from_db()
    assert len(password) == 24 and trunk.ha1_md5 != old_hash and "no-store" in response["Cache-Control"]
    assert password not in owner_client.get(reverse("trunks:connection", args=[trunk.pk])).content.decode()


def test_delete_asks_first(owner_client, trunk):
    confirm = owner_client.get(reverse("trunks:delete", args=[trunk.pk]))
    assert confirm.status_code == 200 and "Delete trunk “Main office”?" in confirm.content.decode()
    assert SipTrunk.objects.filter(pk=trunk.pk).exists()
    response = owner_client.post(reverse("trunks:delete", args=[trunk.pk]))
    assert response.status_code == 302 and not SipTrunk.objects.filter(pk=trunk.pk).exists()


def test_dids_add_and_remove_on_the_trunk(owner_client, trunk):
    url = reverse("trunks:did-add", args=[trunk.pk])
    partial = owner_client.post(url, {"number": "+1 (415) 555-0100"}, **HTMX).content.decode()
    assert "+14155550100 added." in partial and "<html" not in partial
    # The warnings above the panel are refreshed too: the trunk has a DID now.
    assert '<div id="problems-wrap" hx-swap-oob="true">' in partial and 'data-problem="no_did"' not in partial
    bad = owner_client.post(url, {"number": "555-0100"}, **HTMX).content.decode()
    assert "not an E.164 number" in bad
    duplicate = owner_client.post(url, {"number": "+14155550100"}, **HTMX).content.decode()
    assert "already in use" in duplicate
    did = Did.objects.get(trunk=trunk)
    owner_client.post(reverse("trunks:did-remove", args=[trunk.pk, did.pk]), **HTMX)
    assert not Did.objects.filter(trunk=trunk).exists()


def test_phone_numbers_lists_every_did_with_trunk_and_agent(owner_client, tenant, trunk):
    second, _ = make_trunk(tenant, "Branch")
    Agent.objects.create(tenant=tenant, name="Reception", trunk=trunk)
    owner_client.post(reverse("trunks:phone-numbers"), {"number": "+14155550100", "trunk": trunk.pk})
    owner_client.post(reverse("trunks:phone-numbers"), {"number": "+14155550101", "trunk": second.pk})
    page = owner_client.get(reverse("trunks:phone-numbers")).content.decode()
    assert "+14155550100" in page and "+14155550101" in page and "Reception" in page
    assert "No agent linked: calls are not answered." in page  # the Branch number
    assert 'id="connect-your-carrier"' in page


def test_phone_numbers_invites_to_connect_when_empty(owner_client):
    page = owner_client.get(reverse("trunks:phone-numbers")).content.decode()
    assert "Connect your phone system first" in page


def test_phone_number_removal_returns_to_the_phone_numbers_page(owner_client, trunk):
    owner_client.post(reverse("trunks:phone-numbers"), {"number": "+14155550100", "trunk": trunk.pk})
    did = Did.objects.get(trunk=trunk)
    response = owner_client.post(
        reverse("trunks:did-remove", args=[trunk.pk, did.pk]), {"next": reverse("trunks:phone-numbers")}
    )
    assert response["Location"] == reverse("trunks:phone-numbers") and not Did.objects.exists()
    response = owner_client.post(reverse("trunks:did-add", args=[trunk.pk]), {"number": "+14155550102"})
    did = Did.objects.get(trunk=trunk)
    response = owner_client.post(
        reverse("trunks:did-remove", args=[trunk.pk, did.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"].startswith(reverse("trunks:detail", args=[trunk.pk]))


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MANAGER])
def test_viewers_and_managers_read_trunks_but_cannot_change_them(client, tenant, trunk, role):
    client.force_login(make_member(tenant, role))
    assert client.get(reverse("trunks:list")).status_code == 200
    detail = client.get(reverse("trunks:detail", args=[trunk.pk]))
    assert detail.status_code == 200 and "Save settings" not in detail.content.decode()
    assert client.get(reverse("trunks:phone-numbers")).status_code == 200
    posts = [
        (reverse("trunks:settings", args=[trunk.pk]), settings_data(trunk, name="Hacked")),
        (reverse("trunks:suspend", args=[trunk.pk]), {}),
        (reverse("trunks:regenerate-password", args=[trunk.pk]), {}),
        (reverse("trunks:delete", args=[trunk.pk]), {}),
        (reverse("trunks:did-add", args=[trunk.pk]), {"number": "+14155550100"}),
        (reverse("trunks:phone-numbers"), {"number": "+14155550100", "trunk": trunk.pk}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert client.get(reverse("trunks:delete", args=[trunk.pk])).status_code == 403
    before = trunk.ha1_md5
    trunk.refresh_from_db()
    assert trunk.name == "Main office" and not trunk.is_suspended and trunk.ha1_md5 == before
    assert not Did.objects.exists()


def test_viewer_cannot_remove_a_did(client, tenant, trunk):
    owner_did = Did.objects.create(tenant=tenant, trunk=trunk, number="+14155550100")
    client.force_login(make_member(tenant, Role.VIEWER))
    assert client.post(reverse("trunks:did-remove", args=[trunk.pk, owner_did.pk])).status_code == 403
    assert Did.objects.filter(pk=owner_did.pk).exists()
