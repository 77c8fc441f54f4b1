"""Validators, services and the words shown for engine reports: the rules under the pages and the API."""

import pytest
from django.conf import settings
from django.db import connection

from smartalex.errors import ApplicationError
from telephony.sip.digest import ha1
from trunks.config_version import config_version
from trunks.connection import codec_priority_text, connection_details
from trunks.models import Did, SipTrunk, TrunkStatus
from trunks.presentation import (
    contact_without_user,
    event_result,
    failure_in_words,
    sip_alg_suspected,
    status_view,
)
from trunks.services import (
    TrunkSettings,
    did_add,
    trunk_reactivate,
    trunk_regenerate_password,
    trunk_suspend,
    trunk_update,
)
from trunks.validators import (
    normalise_e164,
    private_ranges_in,
    validate_codecs,
    validate_pbx_domain,
    validate_sip_password,
)
from trunks.vendors import PROFILES, vendor_profile, vendor_steps

from .factories import add_event, make_trunk, set_registered

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("PBX.Acme.test.", "pbx.acme.test"),
        ("203.0.113.5", "203.0.113.5"),
        ("pbx.acme.test:5080", "pbx.acme.test:5080"),
    ],
)
def test_pbx_domain_accepts_hostnames_and_ips(raw, clean):
    assert validate_pbx_domain(raw) == clean


@pytest.mark.parametrize("raw", ["", "pbx_acme.test", "-pbx.test", "pbx.acme.test:99999", "a..b", "1.2.3"])
def test_pbx_domain_refuses_garbage(raw):
    with pytest.raises(ApplicationError) as exc:
        validate_pbx_domain(raw)
    assert exc.value.extra == {"field": "pbx_domain"}


def test_private_ranges_are_the_nat_ones_only():
    entries = ["10.1.2.3", "172.16.0.0/24", "192.168.1.10", "100.64.1.1", "203.0.113.7", "8.8.8.8", "fd00::1"]
    assert private_ranges_in(entries) == [
        "10.1.2.3",
        "172.16.0.0/24",
        "192.168.1.10",
        "100.64.1.1",
        "fd00::1",
    ]


def test_codecs_keep_order_and_g711_and_refuse_g729():
    assert validate_codecs(["pcma", "G.722", "PCMU", "PCMA"]) == ["PCMA", "G722", "PCMU"]
    with pytest.raises(ApplicationError, match="G.729 is a licensed codec: contact support"):
        validate_codecs(["PCMU", "G729"])
    with pytest.raises(ApplicationError, match="Keep G.711"):
        validate_codecs(["G722"])
    with pytest.raises(ApplicationError, match="not a supported codec"):
        validate_codecs(["OPUS", "PCMU"])


def test_chosen_password_must_be_long():
    with pytest.raises(ApplicationError):
        validate_sip_password("elevenchars")
    assert validate_sip_password("twelve-chars") == "twelve-chars"


@pytest.mark.parametrize(
    ("raw", "e164"), [("+1 (415) 555-0100", "+14155550100"), ("0027 21 555 0100", "+27215550100")]
)
def test_e164_normalised(raw, e164):
    assert normalise_e164(raw) == e164


def test_create_keeps_only_ha1_and_generates_24_characters(tenant):
    trunk, password = make_trunk(tenant)
    assert len(password) == 24 and trunk.auth_username.startswith("sa")
    realm = settings.SIP_DOMAIN
    assert trunk.ha1_md5 == ha1("MD5", trunk.auth_username, realm, password)
    assert trunk.ha1_sha256 == ha1("SHA-256", trunk.auth_username, realm, password)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM trunks_siptrunk WHERE id = %s", [trunk.pk])
        assert password not in repr(cursor.fetchone())
    assert TrunkStatus.objects.get(trunk=trunk).state == "not_registered"


def test_every_change_bumps_the_engine_config_version(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        trunk, _ = make_trunk(tenant)
    after_create = config_version()
    with django_capture_on_commit_callbacks(execute=True):
        did_add(trunk=trunk, number="+14155550100")
    with django_capture_on_commit_callbacks(execute=True):
        trunk_suspend(trunk=trunk)
    assert after_create >= 1 and config_version() == after_create + 2


def test_names_are_unique_per_workspace_only(tenant, other_tenant):
    make_trunk(tenant, "Main")
    with pytest.raises(ApplicationError, match="already has a trunk called"):
        make_trunk(tenant, "MAIN")
    make_trunk(other_tenant, "Main")  # another workspace may use the same name
    assert SipTrunk.objects.filter(name="Main").count() == 2


def test_dids_are_unique_across_the_platform(tenant, other_tenant):
    mine, _ = make_trunk(tenant)
    theirs, _ = make_trunk(other_tenant)
    did_add(trunk=theirs, number="+27215550100")
    with pytest.raises(ApplicationError, match="already in use"):
        did_add(trunk=mine, number="+27 21 555 0100")
    assert Did.objects.filter(trunk=mine).count() == 0


def test_update_to_ip_only_drops_credentials_and_regenerate_restores_them(tenant):
    trunk, old = make_trunk(tenant)
    username = trunk.auth_username
    values = TrunkSettings.of(trunk)
    trunk_update(
        trunk=trunk,
        values=TrunkSettings(**{**values.__dict__, "auth_type": "ip", "allowed_ips": ("203.0.113.7",)}),
    )
    trunk.refresh_from_db()
    assert trunk.auth_username is None and trunk.ha1_md5 == ""
    new = trunk_regenerate_password(trunk=trunk)
    trunk.refresh_from_db()
    assert trunk.auth_type == "both" and len(new) == 24 and new != old and trunk.auth_username != username


def test_regenerate_keeps_the_username_and_changes_the_hash(trunk):
    before = (trunk.auth_username, trunk.ha1_md5)
    trunk_regenerate_password(trunk=trunk)
    trunk.refresh_from_db()
    assert trunk.auth_username == before[0] and trunk.ha1_md5 != before[1]


def test_suspension_overrides_the_engine_state(trunk):
    set_registered(trunk)
    trunk_suspend(trunk=trunk)
    assert status_view(trunk=trunk).state == "suspended"
    trunk_reactivate(trunk=trunk)
    assert status_view(trunk=trunk).label == "Registered"


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("wrong_password", "wrong password"),
        ("unknown_user", "username not found"),
        ("sip_alg_suspected", "SIP ALG suspected: private address in Contact"),
        ("some_new_code", "some new code"),
    ],
)
def test_failures_read_as_words(reason, words):
    assert failure_in_words(reason) == words


def test_sip_alg_suspected_when_a_private_contact_comes_from_a_public_address():
    assert sip_alg_suspected(contact="<sip:sa1@192.168.1.20:5060>", source="203.0.113.9:5060")
    assert not sip_alg_suspected(contact="<sip:sa1@203.0.113.9:5060>", source="203.0.113.9:5060")
    assert not sip_alg_suspected(contact="sip:sa1@10.0.0.2", source="10.0.0.2:5060")
    assert contact_without_user("<sip:sa1@192.168.1.20:5060>") == "<sip:192.168.1.20:5060>"


def test_last_failure_shows_in_words_on_the_status(trunk):
    set_registered(trunk, state="not_registered", last_failure="unknown_user")
    assert status_view(trunk=trunk).last_failure == "username not found"


def test_event_results(trunk):
    assert (
        event_result(add_event(trunk, "auth_failed", reason="wrong_password")) == "Rejected: wrong password"
    )
    assert (
        event_result(add_event(trunk, "reachable", latency_ms=42.4)) == "Reachable: answered OPTIONS in 42 ms"
    )
    assert event_result(add_event(trunk, "expired")).startswith("Registration expired")


def test_connection_details_follow_the_guide_table(tenant, settings):
    settings.SIP_PORT, settings.SIP_TLS_PORT = 5060, 5061
    trunk, password = make_trunk(tenant, transport="tls")
    details = connection_details(trunk=trunk, password=password)
    rows = {r.setting: r for r in details.rows()}
    assert rows["Registrar / Server"].value == rows["Outbound Proxy"].value == settings.SIP_DOMAIN
    assert rows["Port"].value == "5061" and rows["Transport"].value == "TLS"
    assert rows["Auth Password"].value == password and rows["Auth realm"].value == "Leave blank"
    assert rows["Auth realm"].copies == settings.SIP_DOMAIN
    assert rows["DTMF"].value == "RFC 2833"
    assert (
        codec_priority_text(["PCMU", "PCMA", "G722"])
        == "G.711 u-law (PCMU), then G.711 A-law (PCMA), then G.722"
    )
    without = {r.setting: r for r in connection_details(trunk=trunk).rows()}
    assert password not in without["Auth Password"].value and not without["Auth Password"].copyable


def test_every_vendor_has_notes_and_they_fill_in_the_values():
    assert set(PROFILES) == {
        "other",
        "3cx",
        "freepbx",
        "asterisk",
        "yeastar",
        "grandstream",
        "cisco",
        "avaya",
        "mitel",
        "teams",
    }
    values = {
        "registrar": "sip.example.test",
        "port": "5060",
        "transport": "UDP",
        "transport_lower": "udp",
        "username": "sa123",
        "password": "<Auth Password>",
        "realm": "sip.example.test",
        "codec_priority": "G.711",
        "asterisk_codecs": "ulaw,alaw",
        "max_calls": "12",
        "allowed_ips": "203.0.113.7",
    }
    for vendor, profile in PROFILES.items():
        steps = vendor_steps(profile, auth_type="credentials", values=values)
        assert len(steps) >= 3 and not any("{" in s for s in steps), vendor
    threecx = " ".join(vendor_steps(vendor_profile("3cx"), auth_type="credentials", values=values))
    assert "Number of SIM Calls: 12" in threecx and "Authentication ID (SIP User ID): sa123" in threecx
    ip_only = " ".join(vendor_steps(vendor_profile("3cx"), auth_type="ip", values=values))
    assert "Do not require – IP based" in ip_only and "sa123" not in ip_only
    assert "server_uri=sip:sip.example.test:5060" in vendor_profile("asterisk").snippet.format_map(values)
