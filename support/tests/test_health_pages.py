"""Trunk health for the workspace and for support; traces, bundles and the access audit."""

import json

import pytest
from django.test import Client

from smartalex.tenancy.models import Role
from support.models import AccessKind, SipTrace, SupportAccess
from trunks.tests.factories import add_event, set_registered

from .conftest import AUTH_USERNAME, make_trace

pytestmark = pytest.mark.django_db


def customer_urls(trunk, trace) -> list[str]:
    return [
        f"/trunks/{trunk.pk}/health/",
        f"/trunks/{trunk.pk}/health/bundle/",
        f"/trunks/{trunk.pk}/traces/{trace.pk}/",
        f"/trunks/{trunk.pk}/traces/{trace.pk}/pcap/",
    ]


def test_health_page_explains_why_it_fails(owner_client, trunk):
    add_event(trunk, "auth_failed", seconds_ago=30, reason="wrong_password", source="203.0.113.10:5060")
    add_event(trunk, "reachable", seconds_ago=90, latency_ms=42.0)
    add_event(trunk, "reachable", seconds_ago=60, latency_ms=58.0)
    response = owner_client.get(f"/trunks/{trunk.pk}/health/")
    html = response.content.decode()
    assert response.status_code == 200
    codes = [f.code for f in response.context["findings"]]
    assert codes[0] == "wrong_credentials" and "agent_not_linked" in codes
    assert "Rejected: wrong password" in html
    assert "<polyline" in html and response.context["chart"].last_ms == 58.0
    assert not SupportAccess.objects.exists()  # a member's own view is not audited


def test_trunk_detail_links_to_health(owner_client, trunk):
    assert f'href="/trunks/{trunk.pk}/health/"' in owner_client.get(f"/trunks/{trunk.pk}/").content.decode()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MANAGER, Role.ADMIN])
def test_every_member_reads_health(client, member_factory, trunk, trace, role):
    client.force_login(member_factory(role))
    for url in customer_urls(trunk, trace):
        assert client.get(url).status_code == 200, url


def test_other_workspace_gets_404_everywhere(owner_client, trunk, other_trunk, other_trace):
    before = SupportAccess.objects.count(), SipTrace.objects.count()
    urls = customer_urls(other_trunk, other_trace) + [
        # Our trunk with their trace: the trace must belong to the trunk in the URL too.
        f"/trunks/{trunk.pk}/traces/{other_trace.pk}/",
        f"/trunks/{trunk.pk}/traces/{other_trace.pk}/pcap/",
    ]
    for url in urls:
        for method in ("get", "post", "put", "patch", "delete"):
            response = getattr(owner_client, method)(url)
            assert response.status_code in (404, 405), (method, url, response.status_code)
            if method == "get":
                assert response.status_code == 404, url
    assert (SupportAccess.objects.count(), SipTrace.objects.count()) == before


def test_health_lists_only_own_traces(owner_client, trunk, trace, other_trace):
    response = owner_client.get(f"/trunks/{trunk.pk}/health/")
    assert [t.pk for t, _ in response.context["traces"]] == [trace.pk]


def test_ladder_and_text_show_the_exchange_with_digest_redacted(owner_client, trunk, trace):
    html = owner_client.get(f"/trunks/{trunk.pk}/traces/{trace.pk}/").content.decode()
    assert 'data-label="REGISTER"' in html and 'data-label="403 Forbidden"' in html
    assert "6629fae49393a05397450978507c4ef1" not in html and "[redacted]" in html
    assert AUTH_USERNAME in html  # the workspace sees its own username


def test_owner_pcap_is_raw_admin_pcap_is_redacted(owner_client, client, member_factory, trunk, trace):
    raw = owner_client.get(f"/trunks/{trunk.pk}/traces/{trace.pk}/pcap/")
    assert raw["Content-Type"] == "application/vnd.tcpdump.pcap"
    assert b"6629fae49393a05397450978507c4ef1" in raw.content
    client.force_login(member_factory(Role.ADMIN))
    redacted = client.get(f"/trunks/{trunk.pk}/traces/{trace.pk}/pcap/").content
    assert b"6629fae49393a05397450978507c4ef1" not in redacted and b"[redacted]" in redacted


def test_support_views_are_audited_and_shown_to_the_owner(
    support_client, owner_client, trunk, trace, other_trunk
):
    assert support_client.get(f"/support/trunks/{trunk.pk}/").status_code == 200
    assert support_client.get(f"/support/traces/{trace.pk}/").status_code == 200
    assert support_client.get(f"/support/traces/{trace.pk}/pcap/").status_code == 200
    assert support_client.get(f"/support/trunks/{trunk.pk}/bundle/").status_code == 200
    assert support_client.get(f"/support/trunks/{other_trunk.pk}/").status_code == 200
    kinds = list(
        SupportAccess.objects.filter(tenant=trunk.tenant).order_by("pk").values_list("kind", flat=True)
    )
    assert kinds == [AccessKind.HEALTH, AccessKind.TRACE, AccessKind.PCAP, AccessKind.BUNDLE]
    page = owner_client.get("/settings/support-access/")
    html = page.content.decode()
    assert "agent@support.test" in html and "Downloaded the support bundle" in html
    assert len(page.context["accesses"]) == 4  # the other workspace's access is not listed


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER, Role.VIEWER])
def test_only_the_owner_reads_the_access_log(client, member_factory, role):
    client.force_login(member_factory(role))
    assert client.get("/settings/support-access/").status_code == 404


def test_support_trace_hides_the_username_and_pcap_is_redacted(support_client, trunk, trace):
    html = support_client.get(f"/support/traces/{trace.pk}/").content.decode()
    assert AUTH_USERNAME not in html and "[auth-username]" in html
    pcap = support_client.get(f"/support/traces/{trace.pk}/pcap/").content
    assert AUTH_USERNAME.encode() not in pcap and b"6629fae49393a05397450978507c4ef1" not in pcap


def test_unknown_username_trace_is_support_only(support_client, owner_client):
    trace = make_trace(None)
    html = support_client.get("/support/").content.decode()
    assert f"/support/traces/{trace.pk}/" in html
    assert "nosuchuser" in support_client.get(f"/support/traces/{trace.pk}/").content.decode()
    assert not SupportAccess.objects.exists()  # no workspace's data


def test_bundle_has_no_credentials_and_masks_numbers(owner_client, trunk, trace):
    set_registered(trunk, contact=f"sip:{AUTH_USERNAME}@203.0.113.10:5060")
    response = owner_client.get(f"/trunks/{trunk.pk}/health/bundle/")
    assert response["Content-Disposition"].endswith('.json"')
    text = response.content.decode()
    bundle = json.loads(text)
    assert bundle["trunk"]["dids"] == ["+*******0123"]
    assert "+27215550123" not in text and "5550123" not in text
    for secret in (AUTH_USERNAME, trunk.ha1_md5, trunk.ha1_sha256, "6629fae49393a05397450978507c4ef1"):
        assert secret not in text
    assert bundle["traces"][0]["messages"][0]["text"].startswith("REGISTER sip:")
    assert bundle["status"]["contact"] == "sip:203.0.113.10:5060"


def test_viewer_cannot_reach_support_pages(member_factory, trunk):
    client = Client()
    client.force_login(member_factory(Role.VIEWER))
    assert client.get(f"/support/trunks/{trunk.pk}/").status_code == 404


def test_viewer_cannot_run_probes_and_other_workspace_gets_404(
    member_factory, owner_client, trunk, other_trunk
):
    from trunks.models import TrunkEvent

    client = Client()  # not pytest-django's `client`: that one is owner_client
    client.force_login(member_factory(Role.VIEWER))
    assert client.post(f"/trunks/{trunk.pk}/health/probe/", {"probe": "options"}).status_code == 403
    assert 'id="probe-options"' not in client.get(f"/trunks/{trunk.pk}/health/").content.decode()
    assert (
        owner_client.post(f"/trunks/{other_trunk.pk}/health/probe/", {"probe": "options"}).status_code == 404
    )
    assert not TrunkEvent.objects.filter(kind__endswith="_probe").exists()


def test_owner_and_support_queue_probes(owner_client, support_client, trunk):
    response = owner_client.post(f"/trunks/{trunk.pk}/health/probe/", {"probe": "call", "extension": "101"})
    assert response.status_code == 302 and response["Location"] == f"/trunks/{trunk.pk}/health/"
    response = support_client.post(f"/support/trunks/{trunk.pk}/probe/", {"probe": "options"})
    assert response.status_code == 302
    assert list(SupportAccess.objects.values_list("kind", flat=True)) == [AccessKind.PROBE]
