"""The parser's shortcuts must never change an outcome.

The fast field split (`_plain_fields`, which also builds the header index), the memoised URI,
address and Via sent-by parsers and the shared header index are compared with the strict path
(fast split off, caches off) on every RFC 4475 message, two everyday ones, and fuzzed variants
of all of them: same message and typed views, or same error with the same status. The one-pass
parameter parser, the views `_validate` stores, serialisation, `stamp_received` and
`make_response` are compared with the straightforward code they replace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.sip import headers as headers_module
from telephony.sip import parser, uri
from telephony.sip.errors import MalformedMessage, ParseError, PeerError
from telephony.sip.headers import Headers
from telephony.sip.message import (
    Request,
    Response,
    _serialize,
    _serialize_field_by_field,
    make_response,
    stamp_received,
)
from telephony.sip.parser import DEFAULT_LIMITS, parse_message
from telephony.sip.uri import Params
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
        mock.patch.dict(headers_module._CONTACTS, clear=True),
        mock.patch.dict(headers_module._VIA_SENT_BY, clear=True),
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
        assert (problem, fields) == (None, fast[0])
        # The index built on the way is the one `Headers` would build from the fields.
        assert fast[1] == Headers._trusted(fields).index()


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


# --- the one-pass parameter parser, the views stored by validation, serialisation -------------

PARAM_ALPHABET = ';= \t"\\abrAB09.-_[]:,%<>@/'


@st.composite
def param_texts(draw: st.DrawFn) -> str:
    """Mostly plausible `;name=value` lists (so the one-pass parse is taken), with damage."""
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(["branch", "rport", "received", "tag", "q", "expires", "x", "RPORT", ""]))
        value = draw(
            st.one_of(st.none(), st.sampled_from(["z9hG4bK1", "1", "0.5", '"a b"', '"\\""', "[::1]", ""]))
        )
        space = draw(st.sampled_from(["", " ", "\t "]))
        parts.append(f"{space};{space}{name}" + ("" if value is None else f"{space}={space}{value}"))
    text = "".join(parts) + draw(st.sampled_from(["", " ", ";", "="]))
    if draw(st.booleans()):
        text += draw(st.text(alphabet=PARAM_ALPHABET, max_size=12))
    return text


def _params_outcome(parse: Callable[[str, int], Params], text: str, position: int) -> tuple:
    try:
        params = parse(text, position)
    except ParseError as error:
        return ("error", str(error), error.status)
    # The index a parser hands over must be the one Params would build itself.
    assert params._positions() == {name.lower(): at for at, name in enumerate(params)}
    return ("params", params.pairs())


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(st.one_of(param_texts(), st.text(alphabet=PARAM_ALPHABET, max_size=40)), st.integers(0, 3))
def test_one_pass_parameters_agree_with_one_by_one(text: str, position: int) -> None:
    fast = _params_outcome(headers_module.parse_params, text, position)
    if position >= len(text):
        assert fast == ("params", ())
    else:
        assert fast == _params_outcome(headers_module._parse_params_one_by_one, text, position)


def test_the_one_pass_parameter_parse_is_taken_for_an_everyday_via() -> None:
    # Guards the benchmark figures: a change that silently always falls back must fail here.
    with mock.patch.object(headers_module, "_parse_params_one_by_one", side_effect=AssertionError):
        params = headers_module.parse_params(';branch=z9hG4bK-524287-1;rport; received = "a\\"b"')
    assert params.pairs() == (("branch", "z9hG4bK-524287-1"), ("rport", None), ("received", 'a"b'))


VALIDATED = ("cseq", "vias", "from_", "to", "call_id", "max_forwards")


def assert_views_are_the_properties(data: bytes) -> None:
    """What `_validate` stores is what the properties of an unparsed copy compute."""
    try:
        message = parse_message(data)
    except MalformedMessage:
        return
    fresh = (
        Request(message.method, message.uri, message.headers, message.body)
        if isinstance(message, Request)
        else Response(message.status, message.reason, message.headers, message.body)
    )
    assert fresh == message
    for view in VALIDATED:
        assert message.__dict__[view] == getattr(fresh, view), view


@pytest.mark.parametrize("data", SEEDS, ids=range(len(SEEDS)))
def test_views_stored_by_validation_are_the_properties(data: bytes) -> None:
    assert_views_are_the_properties(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_views_stored_by_validation_are_the_properties_when_fuzzed(data: bytes) -> None:
    assert_views_are_the_properties(data)


def copied_by_lookup(request: Request, to_value: str | None) -> list[tuple[str, str]]:
    """`make_response`'s copied fields as they were computed before reading the index."""
    headers = request.headers
    fields = [("Via", value) for value in headers.get_all("Via")]
    for name, value in (
        ("From", headers.get("From")),
        ("To", to_value),
        ("Call-ID", headers.get("Call-ID")),
        ("CSeq", headers.get("CSeq")),
    ):
        if value is not None:
            fields.append((name, value))
    return fields


def assert_built_the_same(data: bytes) -> None:
    try:
        message = parse_message(data)
    except MalformedMessage:
        return
    for headers in (
        message.headers,
        message.headers.without("Content-Length"),
        message.headers.with_added("Content-Length", "7").with_prepended("Content-Length", "1"),
    ):
        for body in (b"", message.body, b"x\r\ny"):
            assert _serialize(message.start_line, headers, body) == _serialize_field_by_field(
                message.start_line, headers, body
            )
    if not isinstance(message, Request):
        return
    stamped = stamp_received(message, "192.0.2.99", 5060)
    fresh = Request(stamped.method, stamped.uri, stamped.headers, stamped.body)
    for view in VALIDATED:  # the views carried over are what the stamped headers say
        assert getattr(stamped, view) == getattr(fresh, view), view
    response = make_response(stamped, 200, to_tag="t", headers=[("Contact", "<sip:a@b>")])
    to_value = stamped.headers.get("To")
    if stamped.to.tag is None:
        to_value = f"{to_value};tag=t"
    assert tuple(response.headers) == (*copied_by_lookup(stamped, to_value), ("Contact", "<sip:a@b>"))
    assert response == Response(200, "OK", response.headers)


@pytest.mark.parametrize("data", SEEDS, ids=range(len(SEEDS)))
def test_serialisation_stamping_and_responses_match_the_straightforward_code(data: bytes) -> None:
    assert_built_the_same(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_serialisation_stamping_and_responses_match_when_fuzzed(data: bytes) -> None:
    assert_built_the_same(data)
