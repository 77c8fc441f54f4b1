"""Byte tables for parse_message and StreamFramer: start lines, folding, framing, limits."""

from __future__ import annotations

import pytest

from telephony.sip.errors import MalformedMessage
from telephony.sip.message import Request, Response, error_response
from telephony.sip.parser import InvalidMessage, KeepAlive, Limits, StreamFramer, parse_message
from telephony.sip.uri import SipUri
from telephony.tests.sip.helpers import feed

HEADERS = (
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: Alice <sip:alice@example.com>;tag=9fxced76sl\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: 3848276298220188511@192.0.2.1\r\n"
)


def request(
    start_line: str = "OPTIONS sip:bob@example.com SIP/2.0",
    extra: str = "",
    body: bytes = b"",
    cseq: str = "1 OPTIONS",
    length: str | None = "auto",
) -> bytes:
    length_line = "" if length is None else f"Content-Length: {len(body) if length == 'auto' else length}\r\n"
    head = f"{start_line}\r\n{HEADERS}CSeq: {cseq}\r\n{extra}{length_line}\r\n"
    return head.encode() + body


def response(status_line: str = "SIP/2.0 200 OK", extra: str = "") -> bytes:
    return f"{status_line}\r\n{HEADERS}CSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n".encode()


def rejected(data: bytes, **limits: int) -> MalformedMessage:
    with pytest.raises(MalformedMessage) as raised:
        parse_message(data, limits=Limits(**limits))
    return raised.value


# --- start lines ------------------------------------------------------------------------------------


def test_a_plain_request() -> None:
    message = parse_message(request())
    assert isinstance(message, Request)
    assert (message.method, message.uri) == ("OPTIONS", SipUri("example.com", "bob"))
    assert message.call_id == "3848276298220188511@192.0.2.1"
    assert message.top_via.rport_requested and message.max_forwards == 70
    assert message.from_.display_name == "Alice" and message.from_.tag == "9fxced76sl"


@pytest.mark.parametrize(
    ("status_line", "status", "reason"),
    [
        ("SIP/2.0 200 OK", 200, "OK"),
        ("SIP/2.0 180 Ringing", 180, "Ringing"),
        ("SIP/2.0 100 ", 100, ""),
        ("SIP/2.0 100", 100, ""),
        ("SIP/2.0 699 Whatever  it says ", 699, "Whatever  it says "),
        ("sip/2.0 486 Busy Here", 486, "Busy Here"),
    ],
)
def test_status_lines(status_line: str, status: int, reason: str) -> None:
    message = parse_message(response(status_line))
    assert isinstance(message, Response) and (message.status, message.reason) == (status, reason)


@pytest.mark.parametrize(
    "status_line",
    [
        "SIP/2.0 099 Low",
        "SIP/2.0 700 High",
        "SIP/2.0 2000 OK",
        "SIP/2.0 20 OK",
        "SIP/2.0 ２００ OK",
        "SIP/2.0 OK",
        "SIP/3.0 200 OK",
    ],
)
def test_bad_status_lines_are_dropped(status_line: str) -> None:
    error = rejected(response(status_line))
    assert error.discard and error_response(error) is None


@pytest.mark.parametrize(
    ("start_line", "status"),
    [
        ("OPTIONS sip:bob@example.com SIP/3.0", 505),
        ("OPTIONS sip:bob@example.com SIP/2.1", 505),
        ("OPTIONS sip:bob@example.com HTTP/1.1", 400),
        ("OPTIONS sip:bob@example.com", 400),
        ("OPTIONS  sip:bob@example.com SIP/2.0", 400),
        ("OPTIONS sip:bob@example.com SIP/2.0 ", 400),
        (" OPTIONS sip:bob@example.com SIP/2.0", 400),
        ("OPTIONS\tsip:bob@example.com\tSIP/2.0", 400),
        ("OPTIONS <sip:bob@example.com> SIP/2.0", 400),
        ("OPTIONS sip:bob@example.com;lr;x SIP/2.0 SIP/2.0", 400),
        ("OPTIONS sip:bob@example.com?Subject=x SIP/2.0", 400),
        ("OPT(IONS sip:bob@example.com SIP/2.0", 400),
        ("OPTIONS bob@example.com SIP/2.0", 400),
    ],
)
def test_bad_request_lines(start_line: str, status: int) -> None:
    error = rejected(request(start_line))
    assert error.status == status and not error.discard
    reply = error_response(error, to_tag="t1")
    assert reply is not None and reply.status == status and reply.to.tag == "t1"


def test_request_with_lowercase_version_is_accepted() -> None:
    assert isinstance(parse_message(request("OPTIONS sip:bob@example.com sip/2.0")), Request)


# --- header section ---------------------------------------------------------------------------------


def test_folded_lines_are_unfolded() -> None:
    data = request(extra="Subject: first\r\n  second\r\n\tthird\r\nX-Empty:\r\n")
    message = parse_message(data)
    assert message.headers.get("Subject") == "first second third"
    assert message.headers.get("X-Empty") == ""


def test_compact_forms_in_a_message() -> None:
    data = (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example.com;branch=z9hG4bKa\r\n"
        b"f: <sip:alice@example.com>;tag=1\r\n"
        b"t: <sip:bob@example.com>\r\n"
        b"i: c1@a\r\n"
        b"CSEQ: 1 INVITE\r\n"
        b"m: <sip:alice@192.0.2.1>\r\n"
        b"k: 100rel, timer\r\n"
        b"c: application/sdp\r\n"
        b"l: 3\r\n\r\nv=0"
    )
    message = parse_message(data)
    assert [name for name, _ in message.headers] == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Supported",
        "Content-Type",
        "Content-Length",
    ]
    assert message.supported == ("100rel", "timer") and message.body == b"v=0"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("Foo bar\r\n", "without a colon"),
        ("Bad Name: x\r\n", "malformed header name"),
        (": x\r\n", "malformed header name"),
        ("X-A: a\rb\r\n", "bare CR or LF"),
        ("X-A: a\nb\r\n", "bare CR or LF"),
        ("CSeq: 2 OPTIONS\r\n", "CSeq appears 2 times"),
        ("Max-Forwards: 69\r\n", "Max-Forwards appears 2 times"),
        ("i: other\r\n", "Call-ID appears 2 times"),
    ],
)
def test_bad_header_sections(extra: str, fragment: str) -> None:
    error = rejected(request(extra=extra))
    assert fragment in str(error) and error.status == 400
    reply = error_response(error)
    assert reply is not None and reply.headers.get("Call-ID") == "3848276298220188511@192.0.2.1"
    assert "\n" not in reply.to_bytes().decode().replace("\r\n", "")


@pytest.mark.parametrize("missing", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_mandatory_headers(missing: str) -> None:
    lines = [line for line in request().split(b"\r\n") if not line.startswith(missing.encode() + b":")]
    error = rejected(b"\r\n".join(lines))
    assert str(error) == f"missing {missing}" and error.status == 400


def test_max_forwards_is_optional() -> None:
    data = request().replace(b"Max-Forwards: 70\r\n", b"")
    assert parse_message(data).max_forwards is None


def test_cseq_method_must_match() -> None:
    assert rejected(request(cseq="1 INVITE")).status == 400
    assert rejected(request("FOO sip:bob@example.com SIP/2.0", cseq="1 INVITE")).status == 501
    unknown = parse_message(request("FOO sip:bob@example.com SIP/2.0", cseq="1 FOO"))
    assert isinstance(unknown, Request) and unknown.method == "FOO"  # for check_request to 501


# --- framing over UDP -----------------------------------------------------------------------------


def test_datagram_body_is_content_length_octets() -> None:
    data = request(body=b"hello", length="3") + b"trailing junk"
    assert parse_message(data).body == b"hel"


def test_datagram_without_content_length_takes_the_rest() -> None:
    assert parse_message(request(body=b"rest of it", length=None)).body == b"rest of it"


@pytest.mark.parametrize(
    ("extra", "length", "fragment"),
    [
        ("", "99", "only 5 body bytes"),
        ("", "-1", "not a number"),
        ("", "five", "not a number"),
        ("", "0x5", "not a number"),
        ("", "4294967296", "out of range"),
        ("Content-Length: 4\r\n", "5", "disagree"),
    ],
)
def test_bad_content_length(extra: str, length: str, fragment: str) -> None:
    error = rejected(request(extra=extra, body=b"hello", length=length))
    assert fragment in str(error) and error.status == 400 and not error.discard


def test_repeated_equal_content_length_is_fine() -> None:
    assert parse_message(request(extra="l: 5\r\n", body=b"hello")).body == b"hello"


def test_leading_crlf_is_ignored_and_keepalive_datagrams_are_dropped() -> None:
    assert isinstance(parse_message(b"\r\n\r\n" + request()), Request)
    for keepalive in (b"\r\n\r\n", b"\r\n", b""):
        assert rejected(keepalive).discard


def test_missing_blank_line_is_answered_400() -> None:
    data = request()[:-2]
    error = rejected(data)
    assert "no empty line" in str(error)
    reply = error_response(error)
    assert reply is not None and reply.status == 400


def test_utf8_and_arbitrary_octets_survive() -> None:
    data = request().replace(b"CSeq:", "Subject: café ☺\r\nX-Raw: \xff\xfe\r\nCSeq:".encode())
    data = data.replace("\xff\xfe".encode(), b"\xff\xfe")  # not UTF-8 on the wire
    message = parse_message(data)
    assert message.headers.get("Subject") == "café ☺"
    assert message.headers.get("X-Raw") == "\udcff\udcfe"  # kept losslessly as surrogates
    assert b"X-Raw: \xff\xfe\r\n" in message.to_bytes()


def test_max_forwards_out_of_range() -> None:
    error = rejected(request().replace(b"Max-Forwards: 70", b"Max-Forwards: 256"))
    assert "Max-Forwards out of range" in str(error)


# --- limits -------------------------------------------------------------------------------------------


def test_message_size_limit() -> None:
    error = rejected(request(body=b"x" * 200), max_message_size=300)
    assert error.status == 513 and error.discard


def test_header_count_limit() -> None:
    extra = "".join(f"X-{n}: {n}\r\n" for n in range(20))
    error = rejected(request(extra=extra), max_header_count=20)
    assert "more than 20 header fields" in str(error)
    assert isinstance(parse_message(request(extra=extra), limits=Limits(max_header_count=40)), Request)


def test_line_length_limit() -> None:
    error = rejected(request(extra=f"X-Long: {'a' * 200}\r\n"), max_line_length=100)
    assert "too long" in str(error)


def test_via_count_limit() -> None:
    vias = "".join(f"Via: SIP/2.0/UDP p{n}.example.com;branch=z9hG4bK{n}\r\n" for n in range(5))
    error = rejected(request(extra=vias), max_via_count=5)
    assert "more than 5 Via" in str(error)
    assert len(parse_message(request(extra=vias), limits=Limits(max_via_count=6)).vias) == 6


# --- streams ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_pipelined_messages_and_keepalives(chunk: int | None) -> None:
    first, second = request(body=b"one"), request(body=b"second body")
    data = b"\r\n\r\n" + first + b"\r\n" + second + b"\r\n\r\n" + response()
    items = feed(data, chunk)
    assert [type(item).__name__ for item in items] == [
        "KeepAlive",
        "Request",
        "Request",
        "KeepAlive",
        "Response",
    ]
    assert items[1] == parse_message(first) and items[2] == parse_message(second)
    assert isinstance(items[2], Request) and items[2].body == b"second body"


def test_partial_reads_wait_for_the_body() -> None:
    framer = StreamFramer()
    data = request(body=b"0123456789")
    assert framer.feed(data[:-4]) == []
    assert framer.buffered == len(data) - 4
    (message,) = framer.feed(data[-4:])
    assert isinstance(message, Request) and message.body == b"0123456789"
    assert framer.buffered == 0


def test_lone_crlf_waits_to_see_whether_it_is_a_ping() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n") == [KeepAlive()]
    assert framer.feed(b"\r\n") == []
    (message,) = framer.feed(request())  # the pending single CRLF was a pong: ignored
    assert isinstance(message, Request)


def test_invalid_but_framed_message_keeps_the_stream() -> None:
    data = request(cseq="1 INVITE") + request()
    invalid, valid = feed(data, None)
    assert isinstance(invalid, InvalidMessage) and invalid.error.status == 400
    assert not invalid.error.close_connection
    assert isinstance(valid, Request)


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (request(length=None), 400, "mandatory on stream"),
        (request(length="-1"), 400, "not a number"),
        (request(extra="l: 1\r\n", length="2", body=b"ab"), 400, "disagree"),
        (b"NOT SIP AT ALL\r\nno colon here\r\n\r\n", 400, "without a colon"),
    ],
)
def test_framing_errors_close_and_stay_closed(data: bytes, status: int, fragment: str) -> None:
    framer = StreamFramer()
    good = request()
    with pytest.raises(MalformedMessage) as raised:
        framer.feed(good + data)
    error = raised.value
    assert error.close_connection and error.status == status and fragment in str(error)
    assert error.preceding == (parse_message(good),)
    with pytest.raises(MalformedMessage) as again:
        framer.feed(good)
    assert again.value.close_connection and again.value.discard and again.value.preceding == ()


def test_stream_limits() -> None:
    with pytest.raises(MalformedMessage) as raised:
        StreamFramer(limits=Limits(max_message_size=100)).feed(
            b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 20
        )
    assert raised.value.status == 513 and raised.value.close_connection

    with pytest.raises(MalformedMessage) as raised:
        StreamFramer(limits=Limits(max_line_length=50)).feed(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"y" * 60)
    assert "too long" in str(raised.value) and raised.value.close_connection

    with pytest.raises(MalformedMessage) as raised:
        StreamFramer(limits=Limits(max_message_size=1000)).feed(request(length="5000"))
    assert raised.value.status == 513 and raised.value.headers is not None


def test_bytewise_long_line_is_caught_without_a_newline() -> None:
    framer = StreamFramer(limits=Limits(max_line_length=64))
    with pytest.raises(MalformedMessage):
        for byte in b"OPTIONS sip:a@b SIP/2.0\r\nX-Long: " + b"z" * 100:
            framer.feed(bytes([byte]))
