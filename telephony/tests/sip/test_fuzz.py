"""Property tests: whatever bytes arrive, only ParseError/PeerError may come out of the SIP core.

Mutations of real messages (the torture files and two everyday ones) reach far deeper into the
parsers than random bytes: byte flips, truncations, insertions of grammar-significant octets,
duplicated and deleted header lines. Whatever parses must also survive every typed view,
`check_request`, `make_response` and a serialise/parse round trip.
"""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.sip.errors import MalformedMessage, PeerError
from telephony.sip.message import Request, Response, make_response, stamp_received
from telephony.sip.parser import StreamFramer, parse_message
from telephony.sip.uas_checks import check_request
from telephony.tests.sip.helpers import SERVER, TORTURE_DIR

SEEDS = [path.read_bytes() for path in sorted(TORTURE_DIR.rglob("*.dat"))] + [
    b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKnashds7;rport\r\n"
    b"Max-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\nFrom: Bob <sip:bob@example.com>;tag=456248\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\nCSeq: 1826 REGISTER\r\n"
    b'Contact: "Bob" <sip:bob@[2001:db8::7]:5060;transport=tcp>;expires=3600;q=0.7, <sip:b%40x@h>\r\n'
    b'Authorization: Digest username="bob", realm="example.com", nonce="n", uri="sip:example.com", '
    b'response="0f", qop=auth, nc=00000001, cnonce="c"\r\nExpires: 7200\r\nContent-Length: 0\r\n\r\n',
    b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/TCP 10.0.0.7;branch=z9hG4bK1;received=192.0.2.1;rport=1\r\n"
    b"To: <tel:+15551234>;tag=x\r\nFrom: <sip:a@b>;tag=y\r\nCall-ID: z\r\nCSeq: 1 INVITE\r\n"
    b"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\nContent-Length: 0\r\n\r\n",
]

# Octets that mean something to some part of the grammar.
SIGNIFICANT = [b"\r\n", b"\r\n ", b"\r\n\r\n", b":", b";", b",", b'"', b"\\", b"<", b">", b"%", b"%0", b"@",
               b"?", b"=", b" ", b"\t", b"\x00", b"\xff", b"\xc3", b"[", b"]", b"/", b"0", b"9" * 30, b"-"]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        kind = draw(
            st.sampled_from(
                ["flip", "truncate", "insert", "insert_random", "delete", "dup_line", "drop_line"]
            )
        )
        if kind == "flip" and data:
            data[min(position, len(data) - 1)] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.sampled_from(SIGNIFICANT))
        elif kind == "insert_random":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        else:
            lines = bytes(data).split(b"\r\n")
            index = draw(st.integers(0, len(lines) - 1))
            if kind == "dup_line":
                lines.insert(index, lines[index])
            else:
                del lines[index]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


def exercise(message: Request | Response) -> None:
    """Touch everything the upper layers will touch; only PeerError may escape a typed view."""
    for view in ("contacts", "expires", "content_type", "accept", "require", "proxy_require", "supported",
                 "unsupported", "allow", "routes", "record_routes"):  # fmt: skip
        with contextlib.suppress(PeerError):
            getattr(message, view)
    for name in ("Authorization", "WWW-Authenticate"):
        with contextlib.suppress(PeerError):
            message.auth(name)
    for contact in _contacts(message):
        for view in ("expires", "q"):
            with contextlib.suppress(PeerError):
                getattr(contact, view)
    wire = message.to_bytes()
    again = parse_message(wire)  # what we parsed, we can serialise and parse again
    assert again.to_bytes() == wire
    # Equal but for Content-Length, which serialisation writes exactly once, from the body.
    assert again.headers.without("Content-Length") == message.headers.without("Content-Length")
    assert (again.start_line, again.body) == (message.start_line, message.body)
    if isinstance(message, Request):
        check_request(message, **SERVER)
        make_response(stamp_received(message, "192.0.2.99", 5060), 200, to_tag="t").to_bytes()


def _contacts(message: Request | Response) -> tuple:
    try:
        return message.contacts
    except PeerError:
        return ()


# SIP_FUZZ_EXAMPLES=50000 for a deep run; the default keeps the suite at a few seconds.
EXAMPLES = int(os.environ.get("SIP_FUZZ_EXAMPLES", "600"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated())
def test_mutated_datagrams_only_raise_parse_errors(data: bytes) -> None:
    try:
        message = parse_message(data)
    except MalformedMessage as error:
        assert 400 <= error.status <= 599
        return
    exercise(message)


@FUZZ
@given(mutated(), st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_mutated_streams_only_raise_parse_errors(data: bytes, chunk_sizes: list[int]) -> None:
    framer = StreamFramer()
    stream = data + data  # a second copy checks the framer's state after the first
    position = 0
    sizes = iter(chunk_sizes * (len(stream) // sum(chunk_sizes) + 1))
    try:
        while position < len(stream):
            size = next(sizes)
            for item in framer.feed(stream[position : position + size]):
                if isinstance(item, Request | Response):
                    exercise(item)
            position += size
    except MalformedMessage as error:
        assert error.close_connection


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_parse_errors(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        parse_message(data)
    with contextlib.suppress(MalformedMessage):
        StreamFramer().feed(data)


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_prefix_of_every_seed(seed: int) -> None:
    data = SEEDS[seed]
    for end in range(len(data) + 1):
        with contextlib.suppress(MalformedMessage):
            parse_message(data[:end])
