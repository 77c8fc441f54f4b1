"""Serialisation, responses (RFC 3261 §8.2.6), received/rport stamping (RFC 3581), round trips."""

from __future__ import annotations

import dataclasses

import pytest

from telephony.sip.errors import MalformedMessage
from telephony.sip.headers import Headers, parse_vias
from telephony.sip.message import (
    Request,
    Response,
    error_response,
    make_response,
    reason_phrase,
    stamp_received,
)
from telephony.sip.parser import parse_message
from telephony.sip.uri import parse_uri
from telephony.tests.sip.helpers import load

REGISTER = (
    b"REGISTER sip:registrar.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKnashds7;rport\r\n"
    b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@example.com>\r\n"
    b"From: Bob <sip:bob@example.com>;tag=456248\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:bob@10.0.0.7:5060>\r\n"
    b"Timestamp: 54\r\n"
    b"Expires: 7200\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def register() -> Request:
    message = parse_message(REGISTER)
    assert isinstance(message, Request)
    return message


def test_make_response_copies_the_transaction_headers() -> None:
    ok = make_response(
        register(), 200, to_tag="a6c85cf", headers=[("Contact", "<sip:bob@10.0.0.7:5060>;expires=7200")]
    )
    assert ok.to_bytes() == (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKnashds7;rport\r\n"
        b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1\r\n"
        b"From: Bob <sip:bob@example.com>;tag=456248\r\n"
        b"To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n"
        b"Call-ID: 843817637684230@998sdasdh09\r\n"
        b"CSeq: 1826 REGISTER\r\n"
        b"Contact: <sip:bob@10.0.0.7:5060>;expires=7200\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def test_trying_copies_timestamp_and_needs_no_tag() -> None:
    trying = make_response(register(), 100)
    assert trying.reason == "Trying" and trying.to.tag is None
    assert trying.headers.get("Timestamp") == "54"
    assert "Timestamp" not in make_response(register(), 200).headers


def test_an_existing_to_tag_is_kept() -> None:
    in_dialog = dataclasses.replace(
        register(), headers=register().headers.with_replaced("To", "<sip:bob@example.com>;tag=orig")
    )
    assert make_response(in_dialog, 200, to_tag="new").to.tag == "orig"


def test_reason_and_body() -> None:
    reply = make_response(
        register(), 488, "Codecs Incompatible", headers=[("Content-Type", "application/sdp")], body=b"v=0\r\n"
    )
    wire = reply.to_bytes()
    assert wire.startswith(b"SIP/2.0 488 Codecs Incompatible\r\n")
    assert wire.endswith(b"Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")
    assert (
        reason_phrase(404) == "Not Found"
        and reason_phrase(599) == "Server Error"
        and reason_phrase(699) == "Global Failure"
    )


@pytest.mark.parametrize(("status", "to_tag"), [(99, None), (700, None), (200, "bad tag")])
def test_make_response_refuses_nonsense(status: int, to_tag: str | None) -> None:
    with pytest.raises(ValueError):
        make_response(register(), status, to_tag=to_tag)


def test_to_bytes_rewrites_a_stale_content_length() -> None:
    edited = dataclasses.replace(register(), body=b"12345")
    wire = edited.to_bytes()
    assert b"Content-Length: 5\r\n\r\n12345" in wire and wire.count(b"Content-Length") == 1
    built = Request("OPTIONS", parse_uri("sip:a@b"), Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")]))
    assert (
        built.to_bytes()
        == b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("via", "source", "expected"),
    [
        # rport asked: both filled in, even when the address matches (RFC 3581 §4).
        (
            "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1;rport",
            ("10.0.0.7", 5060),
            "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1;rport=5060;received=10.0.0.7",
        ),
        (
            "SIP/2.0/UDP 10.0.0.7:5060;rport;branch=z9hG4bK1",
            ("203.0.113.9", 40123),
            "SIP/2.0/UDP 10.0.0.7:5060;rport=40123;branch=z9hG4bK1;received=203.0.113.9",
        ),
        # No rport: received only when sent-by is not the source address (RFC 3261 §18.2.1).
        (
            "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1",
            ("203.0.113.9", 5060),
            "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1;received=203.0.113.9",
        ),
        (
            "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1",
            ("192.0.2.4", 5060),
            "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.4",
        ),
        (
            "SIP/2.0/UDP [2001:db8::0:7];branch=z9hG4bK1;rport",
            ("2001:db8::7", 5062),
            "SIP/2.0/UDP [2001:db8::0:7];branch=z9hG4bK1;rport=5062;received=2001:db8::7",
        ),
    ],
)
def test_stamp_received(via: str, source: tuple[str, int], expected: str) -> None:
    request = dataclasses.replace(register(), headers=register().headers.with_first_replaced("Via", via))
    parsed_before = (request.from_, request.cseq)
    stamped = stamp_received(request, *source)
    assert stamped.headers.get_all("Via") == (expected, "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1")
    assert stamped.top_via.received == source[0]
    assert request.headers.get("Via") == via  # the original is untouched
    # Views parsed before stamping are carried over, and the carried Vias match the new headers.
    assert (stamped.from_, stamped.cseq) == parsed_before
    assert stamped.from_ is parsed_before[0] and stamped.cseq is parsed_before[1]
    assert stamped.vias == parse_vias(stamped.headers.get_list("Via"))


def test_stamp_received_is_a_no_op_when_sent_by_is_the_source() -> None:
    request = dataclasses.replace(
        register(),
        headers=register().headers.with_first_replaced("Via", "SIP/2.0/UDP 10.0.0.7;branch=z9hG4bK1"),
    )
    assert stamp_received(request, "10.0.0.7", 5060) is request


def test_stamp_received_rewrites_only_the_first_value_of_a_combined_via_line() -> None:
    request = dataclasses.replace(
        register(),
        headers=register().headers.with_first_replaced(
            "Via",
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;rport, SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
        ),
    )
    stamped = stamp_received(request, "192.0.2.1", 1024)
    assert [v.params.get("rport") for v in stamped.vias] == ["1024", None, None]
    assert stamped.vias[1].host == "b.example.com"


def test_response_to_a_stamped_request_carries_received() -> None:
    reply = make_response(stamp_received(register(), "203.0.113.9", 40000), 200, to_tag="x")
    assert reply.top_via.rport == 40000 and reply.top_via.received == "203.0.113.9"


def test_error_response_copies_what_could_be_read() -> None:
    with pytest.raises(MalformedMessage) as raised:
        parse_message(REGISTER.replace(b"CSeq: 1826 REGISTER", b"CSeq: 1826 INVITE"))
    reply = error_response(raised.value, to_tag="z", headers=[("Warning", '399 x "CSeq mismatch"')])
    assert isinstance(reply, Response) and (reply.status, reply.reason) == (400, "Bad Request")
    assert reply.headers.get_all("Via") == register().headers.get_all("Via")
    assert reply.to.tag == "z" and reply.cseq.method == "INVITE"
    assert reply.headers.get("Warning") == '399 x "CSeq mismatch"'


def test_error_response_leaves_an_unreadable_to_alone() -> None:
    with pytest.raises(MalformedMessage) as raised:
        parse_message(REGISTER.replace(b"To: Bob <sip:bob@example.com>", b'To: "Bob <sip:bob@example.com>'))
    reply = error_response(raised.value, to_tag="z")
    assert reply is not None and reply.headers.get("To") == '"Bob <sip:bob@example.com>'


def test_messages_are_immutable_and_hashable() -> None:
    message = register()
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.method = "INVITE"  # type: ignore[misc]
    assert hash(message) == hash(register()) and message == register()


def test_typed_views() -> None:
    message = register()
    assert message.expires == 7200 and message.contacts[0].uri == parse_uri("sip:bob@10.0.0.7:5060")
    assert message.content_length == 0 and message.require == () and message.accept is None
    assert not message.has_wildcard_contact


# Every torture message that parses, requests and responses alike.
VALID = [
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
    "badbranch",
    "baddate",
    "bcast",
    "bext01",
    "cparam01",
    "cparam02",
    "invut",
    "inv2543",
    "novelsc",
    "regaut01",
    "regbadct",
    "regescrt",
    "sdp01",
    "unkscm",
    "unksm2",
    "zeromf",
]


@pytest.mark.parametrize("name", VALID)
def test_round_trip(name: str) -> None:
    parsed = parse_message(load(f"{name}.dat"))
    wire = parsed.to_bytes()
    again = parse_message(wire)
    if "Content-Length" in parsed.headers:
        assert again == parsed
    else:  # inv2543: serialising adds the Content-Length it lacked, nothing else changes
        assert again.headers.without("Content-Length") == parsed.headers and again.body == parsed.body
    assert again.to_bytes() == wire


def test_round_trip_keeps_raw_values_verbatim() -> None:
    wire = parse_message(load("intmeth.dat")).to_bytes()
    assert b'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)' in wire
    assert "extensionHeader-!.%*+_`'~: \ufeff大停電\r\n".encode() in wire
