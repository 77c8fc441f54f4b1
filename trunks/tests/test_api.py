"""/api/v1/trunks and /api/v1/dids: create with the password once, status, changes, DIDs, history;
never an HA1; roles; and the other workspace's ids answer like missing ones."""

import pytest
from django.conf import settings

from conftest import api_client_for
from smartalex.tenancy.models import Role
from trunks.models import Did, SipTrunk

from .factories import add_event, set_registered

pytestmark = pytest.mark.django_db
TRUNKS = "/api/v1/trunks/"


def body(**overrides) -> dict:
    data = {"name": "HQ", "pbx_domain": "pbx.acme.test", "pbx_vendor": "3cx"}
    data.update(overrides)
    return data


def assert_no_ha1(payload, trunk: SipTrunk) -> None:
    text = str(payload)
    assert "ha1" not in text and trunk.ha1_md5 not in text and trunk.ha1_sha256 not in text


def test_create_returns_connection_details_and_the_password_once(api, tenant):
    response = api.post(TRUNKS, body(), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    trunk = SipTrunk.objects.get(tenant=tenant)
    assert len(data["auth_password"]) == 24 and data["auth_username"] == trunk.auth_username
    assert data["connection"] == {
        "registrar": settings.SIP_DOMAIN,
        "outbound_proxy": settings.SIP_DOMAIN,
        "port": settings.SIP_PORT,
        "transport": "udp",
        "auth_username": trunk.auth_username,
        "auth_realm": settings.SIP_DOMAIN,
        "codec_priority": ["PCMU", "PCMA", "G722"],
        "dtmf": "rfc2833",
        "max_concurrent_calls": 10,
    }
    assert data["status"] == "not_registered" and data["pbx_vendor"] == "3cx"
    assert "no-store" in response["Cache-Control"]
    assert_no_ha1(data, trunk)
    again = api.get(f"{TRUNKS}{trunk.pk}/").json()
    assert "auth_password" not in again and data["auth_password"] not in str(again)
    assert_no_ha1(again, trunk)


def test_create_with_every_field(api, tenant):
    response = api.post(
        TRUNKS,
        body(
            auth_type="both",
            auth_username="acme-hq",
            auth_password="A-chosen-password-1",
            allowed_ips=["203.0.113.7", "198.51.100.0/28"],
            codecs=["PCMA", "PCMU"],
            transport="tls",
            max_concurrent_calls=50,
        ),
        format="json",
    )
    data = response.json()
    assert response.status_code == 201 and data["auth_password"] == "A-chosen-password-1"
    assert data["connection"]["port"] == settings.SIP_TLS_PORT
    assert data["allowed_ips"] == ["203.0.113.7", "198.51.100.0/28"] and data["codecs"] == ["PCMA", "PCMU"]
    assert data["max_concurrent_calls"] == 50 and data["auth_type"] == "both"


def test_ip_only_trunk_has_no_password(api):
    data = api.post(TRUNKS, body(auth_type="ip", allowed_ips=["203.0.113.7"]), format="json").json()
    assert data["auth_password"] is None and data["auth_username"] is None
    assert data["connection"]["auth_username"] is None


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"pbx_domain": ""}, "pbx_domain"),
        ({"pbx_domain": "not a host"}, "not a valid hostname"),
        ({"auth_type": "ip"}, "needs at least one address"),
        ({"codecs": ["G729"]}, "G.729 is a licensed codec"),
        ({"max_concurrent_calls": 1001}, "max_concurrent_calls"),
        ({"transport": "sctp"}, "transport"),
        ({"auth_password": "short"}, "at least 12 characters"),
    ],
)
def test_invalid_create_is_a_uniform_400_and_creates_nothing(api, overrides, needle):
    response = api.post(TRUNKS, body(**overrides), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"message", "extra"} and needle in str(response.json())
    assert not SipTrunk.objects.exists()


def test_get_shows_status_and_registration(api, tenant):
    trunk_id = api.post(TRUNKS, body(), format="json").json()["id"]
    trunk = SipTrunk.objects.get(pk=trunk_id)
    set_registered(trunk, options_latency_ms=12.5, last_failure="wrong_password")
    data = api.get(f"{TRUNKS}{trunk_id}/").json()
    assert data["status"] == "registered"
    reg = data["registration"]
    assert reg["source"] == "203.0.113.10:5060" and reg["user_agent"] == "3CXPhoneSystem 20.0.1"
    assert reg["options_latency_ms"] == 12.5 and reg["last_failure"] == "wrong password"
    listed = api.get(TRUNKS).json()["results"]
    assert [t["status"] for t in listed] == ["registered"]


def test_patch_changes_settings_but_not_credentials(api, trunk):
    url = f"{TRUNKS}{trunk.pk}/"
    response = api.patch(url, {"pbx_domain": "pbx2.acme.test", "max_concurrent_calls": 20}, format="json")
    assert response.status_code == 200 and response.json()["pbx_domain"] == "pbx2.acme.test"
    trunk.refresh_from_db()
    assert trunk.max_concurrent_calls == 20 and trunk.name == "Main office"
    refused = api.patch(url, {"auth_password": "A-new-password-123"}, format="json")
    assert refused.status_code == 400 and "regenerate-password" in refused.json()["message"]
    assert api.put(url, body(), format="json").status_code == 405


def test_regenerate_suspend_reactivate(api, trunk):
    url = f"{TRUNKS}{trunk.pk}/"
    old = trunk.ha1_md5
    data = api.post(url + "regenerate-password/").json()
    trunk.refresh_from_db()
    assert len(data["auth_password"]) == 24 and trunk.ha1_md5 != old
    assert_no_ha1(data, trunk)
    assert api.post(url + "suspend/").json()["status"] == "suspended"
    assert api.post(url + "reactivate/").json()["status"] == "not_registered"


def test_events_newest_first_with_public_detail_only(api, trunk):
    add_event(trunk, "auth_failed", 10, reason="unknown_user", source="198.51.100.4:5060", secret="x")
    add_event(trunk, "registered", 0, source="203.0.113.10:5060")
    data = api.get(f"{TRUNKS}{trunk.pk}/events/").json()
    assert [e["kind"] for e in data["results"]] == ["registered", "auth_failed"]
    assert data["results"][1]["result"] == "Rejected: username not found"
    assert data["results"][1]["detail"] == {"reason": "unknown_user", "source": "198.51.100.4:5060"}


def test_dids_on_a_trunk_and_across_the_workspace(api, trunk):
    url = f"{TRUNKS}{trunk.pk}/dids/"
    created = api.post(url, {"number": "+1 415 555 0100"}, format="json")
    assert created.status_code == 201 and created.json()["number"] == "+14155550100"
    assert api.post(url, {"number": "+14155550100"}, format="json").status_code == 400
    assert api.post(url, {"number": "12345"}, format="json").json()["extra"] == {"field": "number"}
    assert [d["number"] for d in api.get(url).json()["results"]] == ["+14155550100"]
    assert api.get("/api/v1/dids/").json()["results"][0]["trunk_name"] == "Main office"
    assert api.get(f"{TRUNKS}{trunk.pk}/").json()["dids"] == ["+14155550100"]
    did_id = created.json()["id"]
    assert api.delete(f"{url}{did_id}/").status_code == 204
    assert not Did.objects.exists()


def test_delete(api, trunk):
    assert api.delete(f"{TRUNKS}{trunk.pk}/").status_code == 204
    assert not SipTrunk.objects.exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MANAGER])
def test_viewer_and_manager_keys_read_but_cannot_change_trunks(tenant, trunk, role):
    client = api_client_for(tenant, role)
    url = f"{TRUNKS}{trunk.pk}/"
    assert client.get(url).status_code == 200 and client.get(url + "events/").status_code == 200
    assert client.post(TRUNKS, body(), format="json").status_code == 403
    assert client.patch(url, {"name": "Changed"}, format="json").status_code == 403
    for action in ("regenerate-password/", "suspend/", "reactivate/"):
        assert client.post(url + action).status_code == 403
    assert client.post(url + "dids/", {"number": "+14155550100"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    before = trunk.ha1_md5
    trunk.refresh_from_db()
    assert trunk.name == "Main office" and trunk.ha1_md5 == before and not trunk.is_suspended
    assert SipTrunk.objects.count() == 1 and not Did.objects.exists()


def test_another_workspaces_trunk_answers_like_a_missing_one(api, other_trunk):
    url, missing = f"{TRUNKS}{other_trunk.pk}/", f"{TRUNKS}{other_trunk.pk + 999}/"
    assert api.get(url).status_code == api.get(missing).status_code == 404
    assert api.get(url).json() == api.get(missing).json()
    before = (other_trunk.name, other_trunk.ha1_md5, other_trunk.pbx_domain)
    assert api.patch(url, {"name": "Hijacked"}, format="json").status_code == 404
    assert api.put(url, body(), format="json").status_code in (404, 405)
    for action in ("regenerate-password/", "suspend/", "reactivate/"):
        assert api.post(url + action).status_code == 404
    assert api.get(url + "events/").status_code == 404
    assert api.get(url + "dids/").status_code == 404
    assert api.post(url + "dids/", {"number": "+14155550100"}, format="json").status_code == 404
    their_did = other_trunk.dids.get()
    assert api.delete(f"{url}dids/{their_did.pk}/").status_code == 404
    assert api.get(f"/api/v1/dids/{their_did.pk}/").status_code == 404
    assert api.delete(url).status_code == 404
    other_trunk.refresh_from_db()
    assert (other_trunk.name, other_trunk.ha1_md5, other_trunk.pbx_domain) == before
    assert not other_trunk.is_suspended and Did.objects.filter(pk=their_did.pk).exists()


def test_their_did_through_my_trunk_is_404(api, trunk, other_trunk):
    their_did = other_trunk.dids.get()
    assert api.delete(f"{TRUNKS}{trunk.pk}/dids/{their_did.pk}/").status_code == 404
    assert Did.objects.filter(pk=their_did.pk).exists()


def test_lists_do_not_leak(api, trunk, other_trunk):
    assert [t["name"] for t in api.get(TRUNKS).json()["results"]] == ["Main office"]
    assert api.get("/api/v1/dids/").json()["results"] == []


def test_tenant_in_the_body_is_ignored(api, tenant, other_tenant):
    response = api.post(TRUNKS, body(tenant=other_tenant.pk, tenant_id=other_tenant.pk), format="json")
    assert response.status_code == 201
    assert SipTrunk.objects.get(pk=response.json()["id"]).tenant == tenant
