"""Where an INVITE goes: pure functions of the request and the configuration."""

from __future__ import annotations

import pytest

from telephony.calls.routing import Rejection, Route, caller_identity, normalise_number, over_limit, route
from telephony.config import build_config
from telephony.sip.parser import parse_message

AGENT = dict(
    id=1, name="A", first_message="Hi", system_prompt="", voice="en-us", language="en-US",
    max_call_duration=300, silence_timeout=30, fallback_extension="",
)  # fmt: skip


def config(**trunk_overrides):
    first = {"agent": AGENT, **trunk_overrides}
    rows = [
        dict(id=1, tenant_id=1, name="One", pbx_domain="pbx.one.test", auth_username="one",
             dids=["+27115550100"], **first),
        dict(id=2, tenant_id=2, name="Two", pbx_domain="pbx.two.test", auth_username="two", agent=AGENT,
             dids=["+442070000000"]),
    ]  # fmt: skip
    return build_config(rows, version=1)


def invite(request_uri: str, *, to: str = "sip:x@example.test", extra: str = ""):
    return parse_message(
        (
            f"INVITE {request_uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
            f'From: "Bob" <sip:+27825550123@pbx.test>;tag=a\r\nTo: <{to}>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n'
            f"Max-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        ).encode()
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("+27115550100", "+27115550100"),
        ("27115550100", "+27115550100"),
        ("0027115550100", "+27115550100"),
        ("+27 (11) 555-0100", "+27115550100"),
        ("+27115550100;user=phone", "+27115550100"),
        ("reception", None),
        ("123", None),
    ],
)
def test_normalise_number(text, expected):
    assert normalise_number(text) == expected


def test_a_did_of_the_identified_trunk_routes_to_it():
    cfg = config()
    decision = route(cfg, invite("sip:27115550100@sip.test"), cfg.trunks[1])
    assert isinstance(decision, Route) and decision.trunk.id == 1 and decision.did == "+27115550100"


def test_the_number_in_to_is_used_when_the_request_uri_has_none():
    cfg = config()
    decision = route(cfg, invite("sip:10.0.0.5:5060", to="sip:+27115550100@sip.test"), cfg.trunks[1])
    assert isinstance(decision, Route)


@pytest.mark.parametrize(
    "uri, trunk_id, overrides, status, reason",
    [
        ("sip:+27119999999@s", 1, {}, 404, "Not Found"),
        ("sip:+442070000000@s", 1, {}, 404, "Not Found"),  # another workspace's DID
        ("sip:+27115550100@s", 1, {"suspended": True}, 403, "Trunk suspended"),
        ("sip:+27115550100@s", 1, {"agent": None}, 480, "No agent linked to this trunk"),
    ],
)
def test_rejections(uri, trunk_id, overrides, status, reason):
    cfg = config(**overrides)
    decision = route(cfg, invite(uri), cfg.trunks[trunk_id])
    assert decision == Rejection(status, reason)


def test_limits_of_the_trunk_then_the_workspace():
    trunk = config().trunks[1]  # max_concurrent_calls defaults to 10
    assert over_limit(trunk=trunk, trunk_calls=9, tenant_calls=0, tenant_limit=None) is None
    assert over_limit(trunk=trunk, trunk_calls=10, tenant_calls=0, tenant_limit=None).retry_after == 5
    workspace = over_limit(trunk=trunk, trunk_calls=1, tenant_calls=5, tenant_limit=5)
    assert workspace.status == 503 and workspace.reason == "Workspace call limit reached"


def test_caller_identity_prefers_p_asserted_identity():
    asserted = invite("sip:1@s", extra='P-Asserted-Identity: "Alice" <sip:+27821112222@pbx.test>\r\n')
    assert caller_identity(asserted)[:2] == ("+27821112222", "Alice")
    number, name, header = caller_identity(invite("sip:1@s"))
    assert (number, name) == ("+27825550123", "Bob") and "tag=" not in header
