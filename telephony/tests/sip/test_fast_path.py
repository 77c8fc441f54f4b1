"""The parser's shortcuts must never change an outcome.

The fast field split (`_plain_fields`), the memoised URI and address parsers and the shared
header index are compared with the strict path (fast split off, caches off) on every RFC 4475
message, two everyday ones, and fuzzed variants of all of them: same message and typed views,
or same error with the same status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings

from telephony.sip import headers as headers_module
from telephony.sip import parser, uri
from telephony.sip.errors import MalformedMessage, ParseError, PeerError
from telephony.sip.headers import Headers
from telephony.sip.message import Request, stamp_received
from telephony.sip.parser import DEFAULT_LIMITS, parse_message
from telephony.tests.sip.test_fuzz import EXAMPLES, SEEDS, mutated

VIEWS = ("call_id", "cseq", "from_", "to", "vias", "max_forwards", "contacts", "has_wildcard_contact",
         "expires", "content_type", "accept", "require", "supported", "allow", "routes", "record_routes")  # fmt: skip


@contextlib.contextmanager
def strict() -> Iterator[None]:
    """The parser as it was before the shortcuts: every line checked, nothing memoised."""
    with (
        mock.patch.object(parser, "_plain_fields", lambda lines: None),
        mock.patch.object(uri, "CACHED_TEXT_LENGTH", -1),
        mock.patch.object(headers_module, "CACHED_TEXT_LENGTH", -1),
        mock.patch.dict(uri._PARSED, clear=True),
        mock.patch.dict(headers_module._ADDRESSES, clear=True),
    ):
        yield


def outcome(data: bytes) -> tuple:
    """Everything the layers above can observe of parsing `data`."""
    try:
        message = parse_message(data)
    except MalformedMessage as error:
        fields = None if error.headers is None else tuple(error.headers)
        return ("error", str(error), error.status, error.reason, error.discard, error.start_line, fields)
    views = []
    for view in VIEWS:
        try:
            views.append(getattr(message, view))
        except PeerError as error:
            views.append(("error", str(error), error.status))
    return (
        "message",
        message.start_line,
        tuple(message.headers),
        message.body,
        tuple(views),
        message.to_bytes(),
    )


def assert_same(data: bytes) -> None:
    with strict():
        expected = outcome(data)
    assert outcome(data) == expected
    assert outcome(data) == expected  # again, now that the caches hold this message's values


@pytest.mark.parametrize("data", SEEDS, ids=range(len(SEEDS)))
def test_torture_and_everyday_messages_parse_the_same_on_both_paths(data: bytes) -> None:
    assert_same(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzzed_messages_parse_the_same_on_both_paths(data: bytes) -> None:
    assert_same(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_plain_split_agrees_with_the_strict_split(data: bytes) -> None:
    head = data.split(b"\r\n\r\n", 1)[0]
    text = parser._FOLD.sub(" ", head.decode("utf-8", "surrogateescape"))
    lines = text.split("\r\n")
    if not parser._is_plain(text, lines, DEFAULT_LIMITS):
        return
    fast = parser._plain_fields(lines)
    start_line, fields, problem = parser._checked_fields(list(lines), DEFAULT_LIMITS)
    if fast is None:
        assert problem is not None  # the fast pass gives up only where the strict one objects
    else:
        assert (problem, fields) == (None, fast)


def test_the_fast_split_is_taken_for_an_everyday_message() -> None:
    # Guards the benchmark figures: a change that silently always falls back must fail here.
    head = SEEDS[-2].split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    assert parser._is_plain(head, lines, DEFAULT_LIMITS)
    assert parser._plain_fields(lines) is not None


def test_malformed_uri_raises_every_time_and_is_never_memoised() -> None:
    for _ in range(2):
        with pytest.raises(ParseError):
            uri.parse_uri("sip:bad host@example.com")
    assert "sip:bad host@example.com" not in uri._PARSED


def test_memoised_uri_equals_a_fresh_parse_and_the_memo_is_bounded() -> None:
    with mock.patch.object(uri, "PARSED_LIMIT", 8), mock.patch.dict(uri._PARSED, clear=True):
        texts = [f"sip:user{i}@example.com;transport=tcp" for i in range(20)]
        for text in texts:
            assert uri.parse_uri(text) == uri._parse_uri(text)
        assert len(uri._PARSED) <= 8
        assert uri.parse_uri(texts[-1]) is uri.parse_uri(texts[-1])
        long_text = "sip:" + "a" * 300 + "@example.com"
        uri.parse_uri(long_text)
        assert long_text not in uri._PARSED


def test_stamped_request_shares_the_index_and_reads_the_same() -> None:
    message = parse_message(SEEDS[-2])
    assert isinstance(message, Request)
    assert "Via" in message.headers and "Expires" in message.headers  # index built
    stamped = stamp_received(message, "192.0.2.9", 40000)
    assert stamped is not message
    assert stamped.headers.index() is message.headers.index()
    top = stamped.headers.get("Via") or ""
    assert "received=192.0.2.9" in top and "rport=40000" in top
    assert stamped.headers.get_all("Contact") == message.headers.get_all("Contact")
    assert stamped.headers.get("CSeq") == "1826 REGISTER"


def test_contains_without_an_index_matches_with_one() -> None:
    names = ["Via", "v", "VIA", "Contact", "m", "X-Custom", "x-custom", "Route", "Subject", "s"]
    fields = [("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("m", "<sip:a@b>"), ("X-Custom", "1")]
    for name in names:
        fresh = Headers(fields)
        indexed = Headers(fields)
        indexed.index()
        assert (name in fresh) == (name in indexed) == (indexed.count(name) > 0)
    assert 3 not in Headers(fields)
