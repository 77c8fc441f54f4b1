"""URI byte tables: what each spelling parses to, what it serialises back to, what is refused."""

from __future__ import annotations

import pytest

from telephony.sip.errors import ParseError
from telephony.sip.uri import AbsoluteUri, Params, SipUri, TelUri, parse_uint, parse_uri

PARSED = [
    ("sip:alice@example.com", SipUri("example.com", "alice")),
    ("SIP:alice@Example.COM", SipUri("Example.COM", "alice")),
    ("sips:alice@example.com:5061", SipUri("example.com", "alice", 5061, scheme="sips")),
    ("sip:example.com", SipUri("example.com")),
    ("sip:192.0.2.4:5060", SipUri("192.0.2.4", port=5060)),
    ("sip:alice:secret@example.com", SipUri("example.com", "alice", password="secret")),
    ("sip:[2001:db8::10]", SipUri("[2001:db8::10]")),
    (
        "sip:bob@[2001:db8::10]:5070;transport=tcp",
        SipUri("[2001:db8::10]", "bob", 5070, params=Params([("transport", "tcp")])),
    ),
    ("sip:[::ffff:192.0.2.1]:5060", SipUri("[::ffff:192.0.2.1]", port=5060)),
    ("sip:p.example.com;lr", SipUri("p.example.com", params=Params([("lr", None)]))),
    ("sip:%61lice@example.com", SipUri("example.com", "alice")),
    ("sip:a%20b@example.com", SipUri("example.com", "a b")),
    ("sip:%00@example.com", SipUri("example.com", "\x00")),
    ("sip:%C3%A9@example.com", SipUri("example.com", "é")),
    ("sip:%FF@example.com", SipUri("example.com", "\udcff")),  # not UTF-8: kept losslessly
    (
        "sip:+15551234;phone-context=example.com@example.com;user=phone",
        SipUri("example.com", "+15551234;phone-context=example.com", params=Params([("user", "phone")])),
    ),
    (
        "sip:a@b.example?subject=hi%20there&priority=urgent",
        SipUri("b.example", "a", headers=(("subject", "hi there"), ("priority", "urgent"))),
    ),
    (
        "sip:a@b.example;maddr=239.255.255.1;ttl=15",
        SipUri("b.example", "a", params=Params([("maddr", "239.255.255.1"), ("ttl", "15")])),
    ),
    ("sip:0007@example.com:05060", SipUri("example.com", "0007", 5060)),
    ("sip:agent_1@pbx_internal.local", SipUri("pbx_internal.local", "agent_1")),
    ("tel:+1-201-555-0123", TelUri("+1-201-555-0123")),
    ("tel:7042;phone-context=example.com", TelUri("7042", Params([("phone-context", "example.com")]))),
    ("http://www.example.com/a?b", AbsoluteUri("http", "//www.example.com/a?b")),
    ("urn:service:sos", AbsoluteUri("urn", "service:sos")),
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[t for t, _ in PARSED])
def test_parses(text: str, expected: object) -> None:
    assert parse_uri(text) == expected


@pytest.mark.parametrize(
    ("text", "serialised"),
    [
        ("sip:alice@example.com", "sip:alice@example.com"),
        ("sip:%61lice@example.com", "sip:alice@example.com"),  # unreserved escapes are undone
        ("sip:a%40b@example.com", "sip:a%40b@example.com"),  # '@' in a user part stays escaped
        ("sip:%00%00@example.com", "sip:%00%00@example.com"),
        ("sip:%FF@example.com", "sip:%FF@example.com"),
        ("sip:user;par=u%40example.net@example.com", "sip:user;par=u%40example.net@example.com"),
        ("sip:alice:p%3Aw@example.com", "sip:alice:p%3Aw@example.com"),
        ("sip:bob@[2001:db8::10]:5070;transport=tcp;lr", "sip:bob@[2001:db8::10]:5070;transport=tcp;lr"),
        ("sip:a@b;n%61me=v%61lue%25%34%31", "sip:a@b;name=value%2541"),
        ("sip:u@h?Route=%3csip:p.example.com%3blr%3e", "sip:u@h?Route=%3Csip:p.example.com%3Blr%3E"),
        ("tel:+1-201-555-0123;ext=42", "tel:+1-201-555-0123;ext=42"),
        ("nobodyKnowsThisScheme:totallyopaquecontent", "nobodyKnowsThisScheme:totallyopaquecontent"),
    ],
)
def test_serialises_to_equivalent_text(text: str, serialised: str) -> None:
    uri = parse_uri(text)
    assert str(uri) == serialised
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice@example.com",  # no scheme
        ":alice",
        "1sip:a@b",
        "sip:",
        "sip:alice@",
        "sip:@example.com",  # empty user
        "sip:a b@example.com",
        "sip:alice@exa mple.com",
        "sip:alice@example.com:",
        "sip:alice@example.com:65536",
        "sip:alice@example.com:5x",
        "sip:alice@example.com:٥٠٦٠",  # non-ASCII digits are not a port
        "sip:alice@[2001:db8::10",
        "sip:alice@[not:an:address]",
        "sip:alice@[2001:db8::10]x",
        "sip:alice@example.com;",
        "sip:alice@example.com;;lr",
        "sip:alice@example.com;lr;LR",  # duplicate parameter
        "sip:alice@example.com;a=b c",
        "sip:alice@example.com?",
        "sip:alice@example.com?novalue",
        "sip:alice@example.com?Route=<sip:p;lr>",  # header values must be escaped
        "sip:%4@example.com",  # broken escape
        "sip:%ZZ@example.com",
        "sip:<alice>@example.com",
        "tel:",
        "tel:abc xyz",
        "http:",
        "http://a b",
        'http://"quoted"',
    ],
)
def test_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(text)


def test_address_of_record_drops_everything_but_user_host_port() -> None:
    uri = parse_uri("sips:Alice:pw@Example.COM:5061;transport=tls;user=phone?Subject=x")
    assert isinstance(uri, SipUri)
    assert uri.address_of_record() == SipUri("example.com", "Alice", 5061, scheme="sips")


def test_host_address_strips_ipv6_brackets() -> None:
    assert SipUri("[2001:db8::1]").host_address == "2001:db8::1"
    assert SipUri("192.0.2.1").host_address == "192.0.2.1"


def test_params_are_ordered_case_insensitive_and_immutable() -> None:
    params = Params([("Transport", "TCP"), ("lr", None)])
    assert params["transport"] == "TCP" and "LR" in params and params.get("lr") is None
    assert list(params) == ["Transport", "lr"]
    assert params.with_param("lr", "on").pairs() == (("Transport", "TCP"), ("lr", "on"))
    assert params.with_param("maddr", "x").pairs()[-1] == ("maddr", "x")
    assert params.without("TRANSPORT").pairs() == (("lr", None),)
    assert params.pairs() == (("Transport", "TCP"), ("lr", None))  # untouched
    with pytest.raises(ValueError, match="duplicate"):
        Params([("a", None), ("A", "1")])


@pytest.mark.parametrize(
    ("text", "maximum", "value"),
    [("0", 10, 0), ("0068", 255, 68), ("255", 255, 255), ("000000000000000000000000000007", 9, 7)],
)
def test_uint_accepts_leading_zeros(text: str, maximum: int, value: int) -> None:
    assert parse_uint(text, maximum, "n") == value


@pytest.mark.parametrize("text", ["", "-1", "+1", "1.0", " 1", "256", "١", "²", "9" * 5000])
def test_uint_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_uint(text, 255, "n")
