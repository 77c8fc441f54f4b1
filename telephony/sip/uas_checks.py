"""What an endpoint checks once a request has parsed, before any application logic (RFC 3261 §8.2).

`check_request` returns the error response to send, or None to carry on. It covers the RFC 4475
cases that are about *our role* (a registrar + UAS endpoint, never a proxy) rather than syntax:

- 501 + Allow for a method nobody defined (intmeth, esc02), 405 + Allow for one we do not handle.
- 416 for a Request-URI scheme we do not serve (unkscm, novelsc).
- 400 for a REGISTER whose To (the address-of-record) is not sip:/sips: (unksm2).
- 400 for a Contact that does not parse, on REGISTER and INVITE (regbadct), where the
  Contact is what we would store or send to; other lazily parsed headers likewise give
  their status when a check needs them.
- 420 + Unsupported listing the Require tags we do not support (bext01); Proxy-Require is a
  proxy's business and is ignored here, as are Require tags on ACK and CANCEL.
- 415 + Accept/Accept-Encoding for a body we cannot read (invut).
- 406 + Warning 399 for an INVITE whose Accept excludes application/sdp (sdp01): our answer
  would be SDP.

Deliberately *not* rejected:

- Max-Forwards: 0 (zeromf): only proxies answer 483; an endpoint processes the request.
- A branch that is exactly the magic cookie ``z9hG4bK`` (badbranch): accepted; the transaction
  layer treats it like an RFC 2543 branch (`Via.has_rfc3261_branch` is False) and matches by
  the §17.2.3 rules, consistent with accepting 2543-style requests without any branch
  (inv2543). Answering 400 would gain nothing and break old gateways.
- A non-GMT Date (baddate): we never use Date.
- An unknown Authorization scheme (regaut01): the registrar answers it with a Digest challenge.
- ACK is never answered, whatever it holds (§17.2.1).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from telephony.sip.errors import PeerError
from telephony.sip.headers import quote_string
from telephony.sip.message import KNOWN_METHODS, Request, Response, make_response
from telephony.sip.uri import SipUri

SDP = "application/sdp"
DEFAULT_URI_SCHEMES = frozenset({"sip", "sips"})
_METHODS_WITH_CONTACT = frozenset({"REGISTER", "INVITE"})
_REQUIRE_EXEMPT = frozenset({"ACK", "CANCEL"})


@dataclass(frozen=True)
class _Rejection:
    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def check_request(
    request: Request,
    *,
    supported_methods: Collection[str],
    supported_extensions: Collection[str],
    accepted_content_types: Collection[str],
    supported_uri_schemes: Collection[str] = DEFAULT_URI_SCHEMES,
    warn_agent: str = "smartalex",
    to_tag: str | None = None,
) -> Response | None:
    """The response that rejects `request`, or None when it may be processed.

    `accepted_content_types` are ``type/subtype`` strings; `warn_agent` names us in the
    Warning header of a 406 (a host name or pseudonym, RFC 3261 §20.43); `to_tag` is the
    fresh tag the caller generated for the To of a rejection (§8.2.6.2; we have no randomness).
    """
    if request.method == "ACK":
        return None
    try:
        rejection = _first_rejection(
            request,
            supported_methods,
            supported_extensions,
            accepted_content_types,
            supported_uri_schemes,
            warn_agent,
        )
    except PeerError as error:  # a header a check needed did not parse
        rejection = _Rejection(error.status, error.reason)
    if rejection is None:
        return None
    return make_response(
        request, rejection.status, rejection.reason, to_tag=to_tag, headers=rejection.headers
    )


def _first_rejection(
    request: Request,
    supported_methods: Collection[str],
    supported_extensions: Collection[str],
    accepted_content_types: Collection[str],
    supported_uri_schemes: Collection[str],
    warn_agent: str,
) -> _Rejection | None:
    # The order is RFC 3261 §8.2: method, then header inspection, then content processing.
    method = request.method
    if method not in supported_methods:
        allow = (("Allow", ", ".join(sorted(supported_methods))),)
        return _Rejection(405 if method in KNOWN_METHODS else 501, headers=allow)
    if request.uri.scheme.lower() not in supported_uri_schemes:
        return _Rejection(416)
    if method == "REGISTER" and not isinstance(request.to.uri, SipUri):
        return _Rejection(400, "Address-of-record must be a SIP or SIPS URI")
    if method in _METHODS_WITH_CONTACT:
        _ = request.contacts  # parsed now: a malformed Contact raises ParseError (400)
    if method not in _REQUIRE_EXEMPT:
        unsupported = [tag for tag in request.require if tag not in supported_extensions]
        if unsupported:
            return _Rejection(420, headers=(("Unsupported", ", ".join(unsupported)),))
    rejection = _check_body(request, accepted_content_types)
    if rejection is None and method == "INVITE" and not _accepts(request, SDP):
        warning = f"399 {warn_agent} {quote_string('Only application/sdp answers are available')}"
        return _Rejection(406, headers=(("Warning", warning),))
    return rejection


def _check_body(request: Request, accepted_content_types: Collection[str]) -> _Rejection | None:
    if not request.body:
        return None
    content_type = request.content_type
    if content_type is None:
        return _Rejection(400, "Body without Content-Type")
    mime_type = content_type.mime_type
    # The configured types are usually lower case already: then no set needs building.
    if mime_type not in accepted_content_types:
        accepted = {mime.lower() for mime in accepted_content_types}
        if mime_type not in accepted:
            return _Rejection(415, headers=(("Accept", ", ".join(sorted(accepted))),))
    if "Content-Encoding" in request.headers:
        encodings = [value.lower() for value in request.headers.get_list("Content-Encoding")]
        if any(encoding != "identity" for encoding in encodings):
            return _Rejection(415, headers=(("Accept-Encoding", "identity"),))
    return None


def _accepts(request: Request, mime_type: str) -> bool:
    ranges = request.accept
    if ranges is None:
        return True  # no Accept means application/sdp (RFC 3261 §20.1)
    return any(media_range.matches(mime_type) for media_range in ranges)
