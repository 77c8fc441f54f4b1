"""Where an INVITE goes, as pure functions of the request, its source and the configuration.

Order of checks (each answers the PBX with the code the troubleshooting guide tells customers
to look for): trunk identity (407 challenge / 403) → DID known (404) → DID on that trunk (404)
→ trunk suspended (403) → an agent linked (480) → concurrency (503 + Retry-After).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telephony.config import EngineConfig, TrunkConfig
from telephony.sip.errors import ParseError
from telephony.sip.headers import parse_name_addr
from telephony.sip.message import Request
from telephony.sip.uri import SipUri, TelUri, Uri

RETRY_AFTER_SECONDS = 5
NO_AGENT_REASON = "No agent linked to this trunk"


@dataclass(frozen=True)
class Rejection:
    status: int
    reason: str
    retry_after: int | None = None


@dataclass(frozen=True)
class Route:
    trunk: TrunkConfig
    did: str


def normalise_number(text: str) -> str | None:
    """A dialled user part as E.164: '+27115550100', '27115550100', '0027…' and 'tel:' forms.
    None when it is not a number (a PBX that puts a name in the Request-URI)."""
    digits = re.sub(r"[\s().\-/]", "", text or "")
    digits = digits.split(";", 1)[0]
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+"):
        digits = "+" + digits
    return digits if re.fullmatch(r"\+[1-9]\d{6,14}", digits) else None


def _user_of(uri: Uri) -> str | None:
    if isinstance(uri, SipUri):
        return uri.user
    if isinstance(uri, TelUri):
        return uri.number
    return None


def dialled_numbers(request: Request) -> list[str]:
    """The DID candidates: the Request-URI's user part first, then To's (some PBXs rewrite the
    Request-URI to our registered Contact and keep the number only in To)."""
    found: list[str] = []
    for uri in (request.uri, request.to.uri):
        user = _user_of(uri)
        number = normalise_number(user) if user else None
        if number and number not in found:
            found.append(number)
    return found


def route(config: EngineConfig, request: Request, identified: TrunkConfig) -> Route | Rejection:
    """The identified trunk must own the DID: another trunk's number answers as unknown (404),
    so a PBX cannot reach a DID of another workspace."""
    candidates = dialled_numbers(request)
    did = next((n for n in candidates if n in config.by_did), None)
    if did is None:
        return Rejection(404, "Not Found")
    if config.by_did[did].id != identified.id:
        return Rejection(404, "Not Found")
    trunk = config.trunks.get(identified.id, identified)
    if trunk.suspended:
        return Rejection(403, "Trunk suspended")
    if trunk.agent is None:
        return Rejection(480, NO_AGENT_REASON)
    return Route(trunk=trunk, did=did)


def over_limit(
    *, trunk: TrunkConfig, trunk_calls: int, tenant_calls: int, tenant_limit: int | None
) -> Rejection | None:
    if trunk_calls >= max(1, trunk.max_concurrent_calls):
        return Rejection(503, "Trunk call limit reached", RETRY_AFTER_SECONDS)
    if tenant_limit is not None and tenant_calls >= tenant_limit:
        return Rejection(503, "Workspace call limit reached", RETRY_AFTER_SECONDS)
    return None


def caller_identity(request: Request) -> tuple[str, str, str]:
    """(number or user, display name, header value) of the original caller: P-Asserted-Identity
    when the PBX asserts one, else From. The header value is what a transfer asserts onwards."""
    value = request.headers.get("P-Asserted-Identity")
    if value:
        try:
            asserted = parse_name_addr(value.split(",")[0])
            return (_user_of(asserted.uri) or "", asserted.display_name or "", str(asserted))
        except ParseError:
            pass
    sender = request.from_
    plain = sender.__class__(sender.uri, sender.display_name)  # without the From tag
    return (_user_of(sender.uri) or "", sender.display_name or "", str(plain))
