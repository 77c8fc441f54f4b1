import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from smartalex.agents.models import Agent
from support.models import SipTrace
from trunks.services import TrunkSettings, did_add, trunk_create

TRUNK_PASSWORD = "Sup3r-secret-trunk-pass-24"
AUTH_USERNAME = "acmepbx7731"


@pytest.fixture
def trunk(tenant):
    trunk, _ = trunk_create(
        tenant=tenant,
        values=TrunkSettings(name="Main office", pbx_domain="pbx.acme.test"),
        username=AUTH_USERNAME,
        password=TRUNK_PASSWORD,
    )
    did_add(trunk=trunk, number="+27215550123")
    return trunk


@pytest.fixture
def other_trunk(other_tenant):
    trunk, _ = trunk_create(
        tenant=other_tenant,
        values=TrunkSettings(name="Globex main", pbx_domain="pbx.globex.test"),
        username="globexpbx0199",
        password="Globex-secret-pass-000001",
    )
    did_add(trunk=trunk, number="+27215550199")
    Agent.objects.create(tenant=other_tenant, name="Globex reception", trunk=trunk)
    return trunk


def register_exchange(
    username: str, *, password_response: str = "6629fae49393a05397450978507c4ef1"
) -> list[dict]:
    now = timezone.now().timestamp()
    pbx, us = "203.0.113.10:5060", "198.51.100.1:5060"
    register = (
        "REGISTER sip:sip.voice.getsmartalex.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhds\r\n"
        f"From: <sip:{username}@sip.voice.getsmartalex.com>;tag=1928301774\r\n"
        f"To: <sip:{username}@sip.voice.getsmartalex.com>\r\n"
        "Call-ID: a84b4c76e66710@pbx\r\nCSeq: 2 REGISTER\r\n"
        f"Contact: <sip:{username}@203.0.113.10:5060>\r\n"
        f'Authorization: Digest username="{username}", realm="sip.voice.getsmartalex.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:sip.voice.getsmartalex.com", '
        f'response="{password_response}", algorithm=MD5, cnonce="0a4f113b", nc=00000001, qop=auth\r\n'
        "Content-Length: 0\r\n\r\n"
    )
    ok = (
        "SIP/2.0 403 Forbidden\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhds\r\n"
        f"From: <sip:{username}@sip.voice.getsmartalex.com>;tag=1928301774\r\n"
        f"To: <sip:{username}@sip.voice.getsmartalex.com>;tag=37GkEhwl6\r\n"
        "Call-ID: a84b4c76e66710@pbx\r\nCSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n"
    )
    return [
        {"at": now, "direction": "in", "transport": "udp", "src": pbx, "dst": us, "text": register},
        {"at": now + 0.004, "direction": "out", "transport": "udp", "src": us, "dst": pbx, "text": ok},
    ]


def make_trace(trunk, *, seconds_ago: int = 0, outcome: str = "403 Forbidden") -> SipTrace:
    username = trunk.auth_username if trunk is not None else "nosuchuser"
    return SipTrace.objects.create(
        tenant=trunk.tenant if trunk is not None else None,
        trunk=trunk,
        kind="register",
        call_id="a84b4c76e66710@pbx",
        outcome=outcome,
        username=username,
        at=timezone.now() - timedelta(seconds=seconds_ago),
        messages=register_exchange(username),
        event_id=uuid.uuid4(),
    )


@pytest.fixture
def trace(trunk):
    return make_trace(trunk)


@pytest.fixture
def other_trace(other_trunk):
    return make_trace(other_trunk)


@pytest.fixture
def support_client(support_user):
    # Its own Client: `owner_client` and friends share pytest-django's `client`.
    client = Client()
    client.force_login(support_user)
    return client
