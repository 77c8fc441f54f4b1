"""Phone Numbers → Connect Your Carrier → SIP Trunk: the wizard, its inline checks and the success screen."""

import re

import pytest
from django.urls import reverse

from conftest import make_member
from smartalex.tenancy.models import Role
from trunks.models import SipTrunk, TrunkEvent
from trunks.services import PASSWORD_LENGTH

from .factories import add_event, set_registered

pytestmark = pytest.mark.django_db

WIZARD = "/phone-numbers/connect/sip-trunk/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def wizard_data(**overrides) -> dict:
    data = {
        "pbx_vendor": "other",
        "name": "Head office",
        "pbx_domain": "pbx.acme.test",
        "auth_type": "credentials",
        "auth_username": "",
        "auth_password": "",
        "allowed_ips": "",
        "codec_preset": "PCMU,PCMA,G722",
        "transport": "udp",
        "max_concurrent_calls": "10",
    }
    data.update(overrides)
    return data


def test_urls_follow_the_guide():
    assert reverse("trunks:phone-numbers") == "/phone-numbers/"
    assert reverse("trunks:wizard") == "/phone-numbers/connect/"
    assert reverse("trunks:wizard-sip") == WIZARD


def test_connect_your_carrier_leads_to_the_sip_trunk_wizard(owner_client):
    page = owner_client.get(reverse("trunks:wizard")).content.decode()
    assert "SIP Trunk – Connect your PBX" in page and f'href="{WIZARD}"' in page


def test_wizard_offers_every_pbx_and_the_guide_fields(owner_client):
    page = owner_client.get(WIZARD).content.decode()
    for label in (
        "Other",
        "3CX",
        "FreePBX",
        "Asterisk",
        "Yeastar",
        "Grandstream",
        "Cisco",
        "Avaya",
        "Mitel",
        "Microsoft Teams Direct Routing",
    ):
        assert f">{label}" in page, label
    for field in ("Trunk Name", "PBX SIP Domain", "Authentication", "IP Whitelist", "Advanced Settings"):
        assert field in page
    assert "G.729 — licensed codec: contact support" in page
    assert '<details class="advanced" id="advanced">' in page  # collapsed by default
    assert re.search(r'name="transport" value="udp"[^>]*checked', page)
    assert re.search(r'name="auth_type" value="credentials"[^>]*checked', page)


def test_choosing_3cx_brings_its_defaults_and_notes_and_keeps_typed_values(owner_client):
    response = owner_client.post(
        WIZARD, wizard_data(pbx_vendor="3cx", _action="vendor", codec_preset="G722,PCMU,PCMA"), **HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200 and '<div id="wizard-form"' in page and "<html" not in page
    assert 'data-vendor="3cx"' in page
    for note in (
        "v18 or later (v20 recommended)",
        "StartUP Pro",
        "Generic VoIP Provider",
        "Main Trunk No. blank",
    ):
        assert note in page, note
    assert "Register/Account based" in page and "Number of SIM Calls: 10" in page
    assert '<option value="PCMU,PCMA" selected>' in page  # 3CX pre-fills G.711
    assert 'value="Head office"' in page and 'value="pbx.acme.test"' in page
    assert not SipTrunk.objects.exists()


def test_teams_defaults_to_tls_on_5061(owner_client):
    page = owner_client.post(
        WIZARD, wizard_data(pbx_vendor="teams", _action="vendor"), **HTMX
    ).content.decode()
    assert "port 5061" in page and "certified SBC" in page


def test_inline_check_reports_a_bad_domain_for_that_field_only(owner_client):
    response = owner_client.post(
        reverse("trunks:wizard-check"),
        wizard_data(pbx_domain="pbx_acme..test", name=""),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME="pbx_domain",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "not a valid hostname or IP address" in body and "required" not in body


def test_inline_check_warns_about_private_whitelist_addresses(owner_client):
    response = owner_client.post(
        reverse("trunks:wizard-check"),
        wizard_data(auth_type="ip", allowed_ips="192.168.1.10\n203.0.113.7"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME="allowed_ips",
    )
    body = response.content.decode()
    assert 'class="warning"' in body and "192.168.1.10: private address" in body and "203.0.113.7" not in body


def test_inline_check_refuses_unknown_fields(owner_client):
    response = owner_client.post(
        reverse("trunks:wizard-check"), wizard_data(), HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="tenant"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"pbx_domain": ""}, "This field is required"),
        ({"pbx_domain": "-bad-.test"}, "not a valid hostname"),
        ({"auth_type": "ip", "allowed_ips": ""}, "needs at least one address"),
        ({"auth_type": "ip", "allowed_ips": "not-an-ip"}, "not an IP address or CIDR block"),
        ({"max_concurrent_calls": "1001"}, "less than or equal to 1000"),
        ({"max_concurrent_calls": "0"}, "greater than or equal to 1"),
        ({"auth_password": "short"}, "at least 12 characters"),
        ({"auth_username": "a b"}, "A SIP username is"),
    ],
)
def test_invalid_wizard_rerenders_the_form_with_the_error_and_creates_nothing(
    owner_client, overrides, field_error
):
    response = owner_client.post(WIZARD, wizard_data(**overrides), **HTMX)
    page = response.content.decode()
    assert response.status_code == 200 and '<div id="wizard-form"' in page
    assert field_error in page
    assert not SipTrunk.objects.exists()


def test_duplicate_trunk_name_is_refused_in_the_same_workspace(owner_client, trunk):
    page = owner_client.post(WIZARD, wizard_data(name="main OFFICE")).content.decode()
    assert "already has a trunk called" in page
    assert SipTrunk.objects.count() == 1


def test_create_shows_every_connection_detail_and_the_password_once(owner_client, tenant, settings):
    settings.SIP_DOMAIN = "sip.voice.getsmartalex.com"
    response = owner_client.post(WIZARD, wizard_data(pbx_vendor="3cx"))
    page = response.content.decode()
    trunk = SipTrunk.objects.get(tenant=tenant)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    for setting in (
        "Registrar / Server",
        "Outbound Proxy",
        "Port",
        "Transport",
        "Auth Username",
        "Auth Password",
        "Auth realm",
        "Codec priority",
        "DTMF",
    ):
        assert f"<td>{setting}</td>" in page, setting
    assert page.count('<code id="conn-registrar">sip.voice.getsmartalex.com</code>') == 1
    assert '<code id="conn-outbound-proxy">sip.voice.getsmartalex.com</code>' in page
    assert '<code id="conn-port">5060</code>' in page and '<code id="conn-transport">UDP</code>' in page
    assert f'<code id="conn-auth-username">{trunk.auth_username}</code>' in page
    assert "Leave blank" in page and '<code id="conn-dtmf">RFC 2833</code>' in page
    assert "G.711 u-law (PCMU), then G.711 A-law (PCMA)" in page
    password = page.split('<code id="conn-auth-password">')[1].split("</code>")[0]
    assert len(password) == PASSWORD_LENGTH and password.isalnum()
    assert page.count('data-copy="#conn-') >= 8
    assert "Waiting for your PBX to register…" in page
    assert "Generic VoIP Provider" in page  # the chosen PBX's steps
    assert 'hx-history="false"' in page  # htmx must not keep this page in localStorage
    # The password is never stored: only digest HA1s are, and they differ from it.
    row = SipTrunk.objects.filter(pk=trunk.pk).values().get()
    assert password not in str(row) and len(row["ha1_md5"]) == 32 and len(row["ha1_sha256"]) == 64
    # Shown once: the connection page offers to regenerate instead.
    later = owner_client.get(reverse("trunks:connection", args=[trunk.pk])).content.decode()
    assert password not in later and "Regenerate password" in later and "Hidden: shown only once" in later


def test_chosen_credentials_are_used(owner_client, tenant):
    owner_client.post(
        WIZARD, wizard_data(auth_username="acme-main", auth_password="Secret-Enough-123", transport="tls")
    )
    trunk = SipTrunk.objects.get(tenant=tenant)
    assert trunk.auth_username == "acme-main" and trunk.transport == "tls"
    page = owner_client.get(reverse("trunks:connection", args=[trunk.pk])).content.decode()
    assert '<code id="conn-port">5061</code>' in page and '<code id="conn-transport">TLS</code>' in page


def test_ip_whitelist_trunk_has_no_credentials(owner_client, tenant):
    response = owner_client.post(WIZARD, wizard_data(auth_type="ip", allowed_ips="203.0.113.7"))
    trunk = SipTrunk.objects.get(tenant=tenant)
    page = response.content.decode()
    assert trunk.auth_username is None and trunk.ha1_md5 == "" and trunk.allowed_ips == ["203.0.113.7"]
    assert "Auth Password" not in page and "203.0.113.7" in page


def test_htmx_create_swaps_in_the_success_screen_and_pushes_a_password_free_url(owner_client, tenant):
    response = owner_client.post(WIZARD, wizard_data(), **HTMX)
    trunk = SipTrunk.objects.get(tenant=tenant)
    assert response["HX-Retarget"] == "#page" and response["HX-Reswap"] == "outerHTML"
    assert response["HX-Push-Url"] == reverse("trunks:connection", args=[trunk.pk])
    page = response.content.decode()
    assert page.startswith('\n<div id="page">') or page.lstrip().startswith('<div id="page">')
    assert '<code id="conn-auth-password">' in page


def test_registration_panel_lists_attempts_and_flips_to_registered(owner_client, trunk):
    url = reverse("trunks:registration", args=[trunk.pk])
    waiting = owner_client.get(url, **HTMX).content.decode()
    assert "Waiting for your PBX to register…" in waiting and 'hx-trigger="every 500ms"' in waiting
    add_event(trunk, "auth_failed", 5, reason="wrong_password", source="198.51.100.4:5060", transport="udp")
    add_event(trunk, "reachable", 1, latency_ms=31)  # an OPTIONS probe: not a REGISTER attempt
    failing = owner_client.get(url, **HTMX).content.decode()
    assert "Rejected: wrong password" in failing and "198.51.100.4:5060" in failing
    assert "Reachable" not in failing
    set_registered(trunk)
    add_event(trunk, "registered", 0, source="203.0.113.10:5060", transport="udp")
    registered = owner_client.get(url, **HTMX).content.decode()
    assert 'data-state="registered"' in registered and "Your PBX is connected" in registered
    assert "Waiting for your PBX" not in registered and "3CXPhoneSystem 20.0.1" in registered
    assert TrunkEvent.objects.filter(trunk=trunk).count() == 3


def test_registration_panel_without_htmx_goes_to_the_connection_page(owner_client, trunk):
    response = owner_client.get(reverse("trunks:registration", args=[trunk.pk]))
    assert response.status_code == 302 and response["Location"] == reverse(
        "trunks:connection", args=[trunk.pk]
    )


@pytest.mark.parametrize("role", [Role.MANAGER, Role.VIEWER])
def test_only_owners_and_admins_may_use_the_wizard(client, tenant, role):
    client.force_login(make_member(tenant, role))
    assert client.get(WIZARD).status_code == 403
    assert client.get(reverse("trunks:wizard")).status_code == 403
    assert client.post(WIZARD, wizard_data()).status_code == 403
    assert client.post(reverse("trunks:wizard-check"), wizard_data(_field="name")).status_code == 403
    assert not SipTrunk.objects.exists()


def test_admin_may_use_the_wizard(client, tenant):
    client.force_login(make_member(tenant, Role.ADMIN))
    assert client.post(WIZARD, wizard_data()).status_code == 200
    assert SipTrunk.objects.filter(tenant=tenant).count() == 1


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(WIZARD)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_support_staff_never_see_credentials(client, tenant, trunk, support_user):
    from smartalex.tenancy.services import membership_add

    membership_add(tenant=tenant, user=support_user, role=Role.VIEWER)
    client.force_login(support_user)
    page = client.get(reverse("trunks:connection", args=[trunk.pk])).content.decode()
    assert trunk.auth_username not in page and "Hidden from support staff" in page
    detail = client.get(reverse("trunks:detail", args=[trunk.pk])).content.decode()
    assert trunk.auth_username not in detail


def test_error_reports_mask_the_password(owner_client, api):
    from django.views.debug import SafeExceptionReporterFilter

    response = owner_client.post(WIZARD, wizard_data(auth_password="A-secret-password-99"))
    params = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert params["auth_password"] != "A-secret-password-99" and params["name"] == "Head office"
    response = api.post(
        "/api/v1/trunks/",
        {"name": "Form", "pbx_domain": "pbx.acme.test", "auth_password": "Another-secret-99"},
    )
    params = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert response.status_code == 201 and params["auth_password"] != "Another-secret-99"
