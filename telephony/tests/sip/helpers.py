"""Shared fixtures for the SIP core tests: torture files, stream feeding, our endpoint's settings."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from telephony.sip.errors import MalformedMessage
from telephony.sip.message import Request, Response, error_response
from telephony.sip.parser import StreamFramer, StreamItem, parse_message
from telephony.sip.uas_checks import check_request

TORTURE_DIR = Path(__file__).resolve().parent.parent / "data" / "rfc4475"

# What our registrar + UAS endpoint serves; mirrors what the sipserver will pass.
SERVER = {
    "supported_methods": frozenset(
        {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "REFER", "NOTIFY"}
    ),
    "supported_extensions": frozenset({"replaces", "norefersub"}),
    "accepted_content_types": frozenset({"application/sdp"}),
}


def load(name: str) -> bytes:
    return (TORTURE_DIR / name).read_bytes()


def feed(data: bytes, chunk: int | None, framer: StreamFramer | None = None) -> list[StreamItem]:
    """Feed `data` whole (chunk None) or `chunk` bytes at a time; all items in order."""
    framer = framer or StreamFramer()
    if chunk is None:
        return framer.feed(data)
    items: list[StreamItem] = []
    for start in range(0, len(data), chunk):
        items += framer.feed(data[start : start + chunk])
    return items


def feed_until_failure(data: bytes, chunk: int | None) -> tuple[list[StreamItem], MalformedMessage | None]:
    """Like `feed`, but returns every item completed before a framing error, and the error."""
    framer = StreamFramer()
    items: list[StreamItem] = []
    step = chunk or max(len(data), 1)
    for start in range(0, len(data), step):
        try:
            items += framer.feed(data[start : start + step])
        except MalformedMessage as error:
            return items + cast(list[StreamItem], list(error.preceding)), error
    return items, None


def endpoint_outcome(data: bytes) -> tuple[str, int | None]:
    """What our endpoint does with a datagram, as (stage, status).

    ("drop", None): silently discarded; ("parse", status): the parser rejected it and we
    answer `status`; ("unanswerable", status): rejected with `status`, but without a Via
    there is nowhere to send it; ("uas", status): parsed, then `check_request` answers `status`;
    ("process", None): handed to the application; ("response", status): a response for the
    transaction layer (which drops it when no client transaction matches).
    """
    try:
        message = parse_message(data)
    except MalformedMessage as error:
        if error.discard:
            assert error_response(error) is None
            return "drop", None
        reply = error_response(error)
        if reply is None:
            assert error.headers is None or "Via" not in error.headers
            return "unanswerable", error.status
        assert reply.status == error.status
        return "parse", error.status
    if isinstance(message, Response):
        return "response", message.status
    assert isinstance(message, Request)
    reply = check_request(message, **SERVER)
    return ("process", None) if reply is None else ("uas", reply.status)
