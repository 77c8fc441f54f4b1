"""Header names, the Headers container, list splitting and the typed header parsers."""

from __future__ import annotations

import pytest

from telephony.sip.errors import ParseError
from telephony.sip.headers import (
    COMPACT_FORMS,
    CSeq,
    Headers,
    NameAddr,
    Via,
    canonical_name,
    format_params,
    parse_auth,
    parse_contacts,
    parse_cseq,
    parse_max_forwards,
    parse_media_type,
    parse_name_addr,
    parse_tokens,
    parse_via,
    split_list,
    unquote,
)
from telephony.sip.uri import AbsoluteUri, Params, SipUri, TelUri


@pytest.mark.parametrize(
    ("compact", "long_name"),
    [
        ("v", "Via"),
        ("f", "From"),
        ("t", "To"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("u", "Allow-Events"),
        ("b", "Referred-By"),
        ("x", "Session-Expires"),
        ("y", "Identity"),
    ],
)
def test_compact_forms(compact: str, long_name: str) -> None:
    assert canonical_name(compact) == long_name
    assert canonical_name(compact.upper()) == long_name
    assert COMPACT_FORMS[compact] == long_name
    headers = Headers([(compact.upper(), "x")])
    assert list(headers) == [(long_name, "x")]
    assert headers.get(long_name.upper()) == "x" and headers.get(compact) == "x"


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("call-id", "Call-ID"),
        ("CSEQ", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("X-Custom", "X-Custom"),
    ],
)
def test_canonical_names(written: str, canonical: str) -> None:
    assert canonical_name(written) == canonical


def test_headers_keep_order_and_are_case_insensitive() -> None:
    headers = Headers(
        [("Via", "SIP/2.0/UDP a"), ("x-thing", "1"), ("v", "SIP/2.0/UDP b, SIP/2.0/UDP c"), ("X-THING", "2")]
    )
    assert headers.get("VIA") == "SIP/2.0/UDP a"
    assert headers.get_all("via") == ("SIP/2.0/UDP a", "SIP/2.0/UDP b, SIP/2.0/UDP c")
    assert headers.get_list("Via") == ("SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/UDP c")
    assert headers.get_all("X-Thing") == ("1", "2")
    assert list(headers)[1] == ("x-thing", "1")  # unknown names keep their spelling
    assert headers.count("x-thing") == 2 and "X-Thing" in headers and "Route" not in headers
    assert (
        headers.get("Route") is None and headers.get("Route", "d") == "d" and headers.get_all("Route") == ()
    )


def test_headers_updates_return_copies() -> None:
    headers = Headers([("Via", "a"), ("To", "t"), ("Via", "b")])
    assert list(headers.with_added("Route", "<sip:r>"))[-1] == ("Route", "<sip:r>")
    assert list(headers.with_prepended("Via", "z")) == [("Via", "z"), ("Via", "a"), ("To", "t"), ("Via", "b")]
    assert list(headers.with_prepended("Route", "r"))[0] == ("Route", "r")
    assert list(headers.with_replaced("Via", "c")) == [("Via", "c"), ("To", "t")]
    assert list(headers.with_first_replaced("Via", "c")) == [("Via", "c"), ("To", "t"), ("Via", "b")]
    assert list(headers.without("via")) == [("To", "t")]
    assert list(headers) == [("Via", "a"), ("To", "t"), ("Via", "b")]
    assert headers == Headers([("v", "a"), ("t", "t"), ("VIA", "b")])
    assert hash(headers) == hash(Headers([("v", "a"), ("t", "t"), ("VIA", "b")]))


@pytest.mark.parametrize(
    ("name", "value"), [("Bad Name", "x"), ("", "x"), ("X", "a\r\nInjected: 1"), ("X", "a\nb")]
)
def test_headers_refuse_what_would_corrupt_the_wire(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        Headers([(name, value)])


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("", []),
        ("a", ["a"]),
        ("a, b ,c", ["a", "b", "c"]),
        ('"Doe, John" <sip:j@x>, <sip:k@y>', ['"Doe, John" <sip:j@x>', "<sip:k@y>"]),
        ("<sip:a@x;p=1,2>;q=1, <sip:b@y>", ["<sip:a@x;p=1,2>;q=1", "<sip:b@y>"]),
        ('"a \\", b" <sip:x@y>, c', ['"a \\", b" <sip:x@y>', "c"]),
        ("a,,b", ["a", "", "b"]),
        ("a,", ["a", ""]),
    ],
)
def test_split_list_respects_quotes_and_angle_brackets(value: str, items: list[str]) -> None:
    assert split_list(value) == items


NAME_ADDRS = [
    ("<sip:alice@example.com>", NameAddr(SipUri("example.com", "alice"))),
    ("sip:alice@example.com", NameAddr(SipUri("example.com", "alice"))),
    (
        '"Alice" <sip:alice@example.com>;tag=1928',
        NameAddr(SipUri("example.com", "alice"), "Alice", Params([("tag", "1928")])),
    ),
    ('"" <sip:a@b>', NameAddr(SipUri("b", "a"), "")),
    ('"A \\"q\\" \\\\ b"<sip:a@b>', NameAddr(SipUri("b", "a"), 'A "q" \\ b')),
    ('"Zoë 東京" <sip:a@b>', NameAddr(SipUri("b", "a"), "Zoë 東京")),
    ("Alice  Smith <sip:a@b>", NameAddr(SipUri("b", "a"), "Alice Smith")),
    (
        "caller<sip:caller@example.com>;tag=323",
        NameAddr(SipUri("example.com", "caller"), "caller", Params([("tag", "323")])),
    ),
    # Without <>, ';' starts header parameters: the URI has none (cparam01).
    ("sip:a@b;tag=x;lr", NameAddr(SipUri("b", "a"), None, Params([("tag", "x"), ("lr", None)]))),
    ("sip:a@b ;  tag =  x", NameAddr(SipUri("b", "a"), None, Params([("tag", "x")]))),
    (
        "<sip:a@b;lr>;tag=x",
        NameAddr(SipUri("b", "a", params=Params([("lr", None)])), None, Params([("tag", "x")])),
    ),
    ('<sip:a@b>;p="quoted; value"', NameAddr(SipUri("b", "a"), None, Params([("p", "quoted; value")]))),
    (
        "<sip:a@[2001:db8::1]>;received=[2001:db8::1]",
        NameAddr(SipUri("[2001:db8::1]", "a"), None, Params([("received", "[2001:db8::1]")])),
    ),
    ("<tel:+15551234>", NameAddr(TelUri("+15551234"))),
    (
        "<http://www.example.com>;tag=3",
        NameAddr(AbsoluteUri("http", "//www.example.com"), None, Params([("tag", "3")])),
    ),
    ("isbn:2983792873", NameAddr(AbsoluteUri("isbn", "2983792873"))),
]


@pytest.mark.parametrize(("text", "expected"), NAME_ADDRS, ids=[t for t, _ in NAME_ADDRS])
def test_name_addr(text: str, expected: NameAddr) -> None:
    parsed = parse_name_addr(text)
    assert parsed == expected
    assert parse_name_addr(str(parsed)) == parsed  # serialises to something equivalent


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"unterminated <sip:a@b>',
        '"A" sip:a@b',  # display name without <>
        "Bell, Alexander <sip:a@b>",  # unquoted non-token display name (baddn)
        "<sip:a@b",
        "< sip:a@b >",  # badaspec
        "<sip:a@b>;",
        "<sip:a@b>;;tag=1",
        "<sip:a@b>;tag=1;tag=2",
        "<sip:a@b> junk",
        "sip:a@b?Route=x",  # '?' needs <> (regbadct)
        "alice@example.com",  # no scheme
        "<sip:a@b>;p=bad value",
    ],
)
def test_name_addr_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_name_addr(text)


def test_tag_property_and_with_tag() -> None:
    address = parse_name_addr("<sip:a@b>;x=1")
    assert address.tag is None
    tagged = address.with_tag("abc")
    assert tagged.tag == "abc" and str(tagged) == "<sip:a@b>;x=1;tag=abc"


def test_contacts_with_expires_and_q() -> None:
    contacts, wildcard = parse_contacts(["<sip:a@b>;expires=0060;q=0.5", "sip:c@d;q=1", "<sip:e@f>"])
    assert not wildcard
    assert [(c.expires, c.q) for c in contacts] == [(60, 0.5), (None, 1.0), (None, None)]


def test_wildcard_contact_stands_alone() -> None:
    assert parse_contacts(["*"]) == ((), True)
    with pytest.raises(ParseError):
        parse_contacts(["*", "<sip:a@b>"])


@pytest.mark.parametrize(
    ("param", "attribute"),
    [("expires=4294967296", "expires"), ("expires=x", "expires"), ("q=1.5", "q"), ("q=0.1234", "q")],
)
def test_contact_params_out_of_range(param: str, attribute: str) -> None:
    (contact,), _ = parse_contacts([f"<sip:a@b>;{param}"])
    with pytest.raises(ParseError):
        getattr(contact, attribute)


VIAS = [
    (
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776",
        Via("UDP", "192.0.2.1", 5060, Params([("branch", "z9hG4bK776")])),
    ),
    ("SIP/2.0/tcp host.example.com", Via("TCP", "host.example.com")),
    (
        "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw",
        Via("UDP", "192.0.2.2", None, Params([("branch", "390skdjuw")])),
    ),
    (
        "SIP/2.0/UDP [2001:db8::9:1]:5070;rport",
        Via("UDP", "[2001:db8::9:1]", 5070, Params([("rport", None)])),
    ),
    (
        "SIP/2.0/UDP h ; rport = 5061 ; received = 192.0.2.9",
        Via("UDP", "h", None, Params([("rport", "5061"), ("received", "192.0.2.9")])),
    ),
    (
        "SIP/2.0/TLS h:05061;maddr=239.1.1.1;ttl=16",
        Via("TLS", "h", 5061, Params([("maddr", "239.1.1.1"), ("ttl", "16")])),
    ),
    (
        "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKx",
        Via("WSS", "df7jal23ls0d.invalid", None, Params([("branch", "z9hG4bKx")])),
    ),
]


@pytest.mark.parametrize(("text", "expected"), VIAS, ids=[t for t, _ in VIAS])
def test_via(text: str, expected: Via) -> None:
    via = parse_via(text)
    assert via == expected
    assert parse_via(str(via)) == via


def test_via_rport_flag_versus_value() -> None:
    flag = parse_via("SIP/2.0/UDP h;rport;branch=z9hG4bK1")
    assert flag.rport_requested and flag.rport is None
    filled = parse_via("SIP/2.0/UDP h;rport=5062;received=192.0.2.4;branch=z9hG4bK1")
    assert filled.rport_requested and filled.rport == 5062 and filled.received == "192.0.2.4"
    absent = parse_via("SIP/2.0/UDP h;branch=z9hG4bK1")
    assert not absent.rport_requested and absent.rport is None
    assert parse_via("SIP/2.0/UDP h;ttl=3;maddr=m.example").ttl == 3
    assert parse_via("SIP/2.0/UDP h;maddr=m.example").maddr == "m.example"


@pytest.mark.parametrize(
    ("branch", "rfc3261"),
    [
        ("z9hG4bK776asdhds", True),
        ("z9hG4bK", False),
        ("390skdjuw", False),
        ("Z9HG4BK1", False),
        (None, False),
    ],
)
def test_rfc3261_branch(branch: str | None, rfc3261: bool) -> None:
    text = "SIP/2.0/UDP h" + ("" if branch is None else f";branch={branch}")
    assert parse_via(text).has_rfc3261_branch is rfc3261


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0 UDP h",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP h;;",
        "SIP/2.0/UDP 192.0.2.15;;,;,,",
        "SIP/2.0/UDP h;branch",
        "SIP/2.0/UDP h;rport=x",
        "SIP/2.0/UDP h;rport=70000",
        "SIP/2.0/UDP h;ttl=256",
        "SIP/2.0/UDP [2001:db8::zz]",
        "SIP/2.0/UDP h junk",
    ],
)
def test_via_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_via(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 INVITE", CSeq(1, "INVITE")),
        ("0009   INVITE", CSeq(9, "INVITE")),
        ("4294967295 ACK", CSeq(2**32 - 1, "ACK")),
    ],
)
def test_cseq(text: str, expected: CSeq) -> None:
    assert parse_cseq(text) == expected
    assert str(expected) == f"{expected.number} {expected.method}"


@pytest.mark.parametrize(
    "text", ["INVITE", "1", "4294967296 INVITE", "-1 INVITE", "1 INVITE x", "1 IN VITE", "1,INVITE"]
)
def test_cseq_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_cseq(text)


def test_max_forwards_range() -> None:
    assert (
        parse_max_forwards("0068") == 68 and parse_max_forwards("0") == 0 and parse_max_forwards("255") == 255
    )
    for bad in ("256", "300", "-1", "", "7 0"):
        with pytest.raises(ParseError):
            parse_max_forwards(bad)


def test_media_types() -> None:
    sdp = parse_media_type("Application/SDP")
    assert sdp.mime_type == "application/sdp"
    mixed = parse_media_type('multipart/mixed ; boundary="7a9c;bec"')
    assert mixed.params["boundary"] == "7a9c;bec"
    assert str(mixed) == 'multipart/mixed;boundary="7a9c;bec"'
    assert parse_media_type("*/*").matches("application/sdp")
    assert parse_media_type("application/*").matches("application/sdp")
    assert not parse_media_type("text/*").matches("application/sdp")
    with pytest.raises(ParseError):
        parse_media_type("application")


def test_option_tags() -> None:
    assert parse_tokens(["100rel", "timer"], "Supported") == ("100rel", "timer")
    with pytest.raises(ParseError):
        parse_tokens(["100rel", ""], "Supported")
    with pytest.raises(ParseError):
        parse_tokens(["a b"], "Require")


def test_auth_params() -> None:
    digest = parse_auth(
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b", uri="sip:bob@biloxi.com", '
        'qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae4", opaque="5ccc069c", algorithm=MD5'
    )
    assert digest.scheme == "Digest"
    assert digest.params["realm"] == "biloxi.com" and digest.params["qop"] == "auth"
    assert digest.params["uri"] == "sip:bob@biloxi.com" and digest.params["algorithm"] == "MD5"
    assert parse_auth('Digest realm="a\\"b"').params["realm"] == 'a"b'
    assert parse_auth("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").token68 == "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert parse_auth("NoOneKnowsThisScheme opaque-data=here").params.pairs() == (("opaque-data", "here"),)
    for bad in (
        'Digest realm="a", realm="b"',
        'Digest realm="open',
        'Digest realm="a" nonce="b"',
        "Dig=est x",
    ):
        with pytest.raises(ParseError):
            parse_auth(bad)


def test_quoting_helpers() -> None:
    assert unquote('"a\\"b"') == 'a"b' and unquote("token") == "token"
    assert format_params(Params([("a", "b"), ("flag", None), ("s", "two words"), ("e", "")])) == (
        ';a=b;flag;s="two words";e=""'
    )
