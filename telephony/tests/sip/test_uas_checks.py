"""check_request beyond the torture files: each rule, its exemptions, and the order they apply in."""

from __future__ import annotations

import pytest

from telephony.sip.message import Request
from telephony.sip.parser import parse_message
from telephony.sip.uas_checks import check_request
from telephony.tests.sip.helpers import SERVER


def make(
    method: str = "INVITE",
    uri: str = "sip:agent@example.com",
    extra: str = "",
    body: bytes = b"",
    to: str = "<sip:agent@example.com>",
) -> Request:
    data = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKq1\r\n"
        f"From: <sip:caller@example.net>;tag=f1\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def status(request: Request, **overrides: object) -> int | None:
    reply = check_request(request, **{**SERVER, **overrides})
    return None if reply is None else reply.status


SDP = b"v=0\r\n"
SDP_TYPE = "Content-Type: application/sdp\r\n"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (make(extra=SDP_TYPE, body=SDP), None),
        (make("OPTIONS", extra="Max-Forwards: 0\r\n"), None),  # an endpoint never answers 483
        (make("SUBSCRIBE"), 405),
        (make("FROB"), 501),
        (make("REGISTER", uri="sip:example.com", to="<tel:+15551234>"), 400),
        (make("REGISTER", uri="sip:example.com", extra="Contact: *\r\nExpires: 0\r\n"), None),
        (make("REGISTER", uri="sip:example.com", extra="Contact: <sip:a@b>;q=2\r\n"), None),  # q read later
        (make("REGISTER", uri="sip:example.com", extra='Contact: "x <sip:a@b>\r\n'), 400),
        (make("INVITE", extra="Contact: <sip:a@b>>\r\n"), 400),
        (make(uri="tel:+15551234"), 416),
        (make(uri="sips:agent@example.com"), None),
        (make(extra="Require: 100rel\r\n"), 420),
        (make(extra="Require: replaces\r\n"), None),
        (make(extra="Proxy-Require: foo\r\n"), None),  # a proxy's business
        (make(extra="Require: bad tag\r\n"), 400),
        (make("CANCEL", extra="Require: 100rel\r\n"), None),
        (make("ACK", extra="Require: 100rel\r\nContent-Type: text/nope\r\n", body=b"x"), None),
        (make(body=SDP), 400),  # a body without Content-Type
        (make(extra="Content-Type: text/plain\r\n", body=b"hi"), 415),
        (make(extra="Content-Type: Application/SDP;charset=utf-8\r\n", body=SDP), None),
        (make(extra=SDP_TYPE + "Content-Encoding: gzip\r\n", body=SDP), 415),
        (make(extra=SDP_TYPE + "Content-Encoding: identity\r\n", body=SDP), None),
        (make(extra="Content-Type: text/plain\r\n"), None),  # no body, nothing to read
        (make(extra="Accept: application/*\r\n"), None),
        (make(extra="Accept: */*;q=0.5\r\n"), None),
        (make(extra="Accept: text/html, application/sdp\r\n"), None),
        (make(extra="Accept: text/html\r\n"), 406),
        (make(extra="Accept:\r\n"), 406),  # an empty Accept accepts nothing
        (make("OPTIONS", extra="Accept: text/html\r\n"), None),  # OPTIONS can be answered without SDP
        (make(extra="Accept: ;;\r\n"), 400),
    ],
)
def test_check_request(request_: Request, expected: int | None) -> None:
    assert status(request_) == expected


def test_method_checks_come_first() -> None:
    # An unknown method with an unknown scheme, extension and body type is still a 501.
    request = make("FROB", uri="urn:x", extra="Require: x\r\nContent-Type: a/b\r\n", body=b"?")
    reply = check_request(request, **SERVER)
    assert reply is not None and reply.status == 501
    assert reply.headers.get("Allow") == "ACK, BYE, CANCEL, INVITE, NOTIFY, OPTIONS, REFER, REGISTER"


def test_supported_schemes_are_configurable() -> None:
    assert status(make(uri="tel:+15551234"), supported_uri_schemes={"sip", "sips", "tel"}) is None


def test_rejections_get_the_callers_to_tag() -> None:
    reply = check_request(make("FROB"), **SERVER, to_tag="8f3a")
    assert reply is not None and reply.to.tag == "8f3a"
    reply = check_request(make(extra="Accept: text/html\r\n"), **SERVER, warn_agent="pbx.example.com")
    assert reply is not None and reply.headers.get("Warning", "").startswith("399 pbx.example.com ")
    assert reply.to.tag is None
