"""Turns what the engine reported (TrunkStatus, TrunkEvent) into the words a customer reads."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime

from .models import SipTrunk, TrunkEvent, TrunkStatus
from .selectors import SUSPENDED, trunk_state, trunk_status
from .validators import is_nat_address

STATE_LABELS = {
    "registered": "Registered",
    "not_registered": "Not registered",
    "unreachable": "Unreachable",
    SUSPENDED: "Suspended",
}

SIP_ALG_WORDS = "SIP ALG suspected: private address in Contact"
FAILURE_WORDS = {
    "wrong_password": "wrong password",
    "unknown_user": "username not found",
    "wrong_realm": "wrong realm: leave the Auth realm blank on your PBX",
    "stale_nonce": "stale nonce: the PBX answered an old challenge (it retries by itself)",
    "missing_credentials": "no credentials sent",
    "unsupported_algorithm": "digest algorithm not supported: use MD5 or SHA-256",
    "ip_not_allowed": "source address not on the IP Whitelist",
    "suspended": "trunk suspended",
    "sip_alg": SIP_ALG_WORDS,
    "sip_alg_suspected": SIP_ALG_WORDS,
    "private_contact": SIP_ALG_WORDS,
    "transport_mismatch": "transport mismatch: the PBX and the trunk use different transports (UDP/TCP/TLS)",
    "timeout": "no answer (timeout)",
}

# The kinds the registrar writes for REGISTER attempts (OPTIONS probes write reachable/unreachable).
REGISTER_KINDS = ("registered", "refreshed", "unregistered", "expired", "auth_failed")
EVENT_WORDS = {
    "registered": "Registered",
    "refreshed": "Registration refreshed",
    "unregistered": "Unregistered by the PBX",
    "expired": "Registration expired: the PBX stopped refreshing it",
    "auth_failed": "Rejected",
    "reachable": "Reachable: answered OPTIONS",
    "unreachable": "Unreachable: no answer to OPTIONS",
}
GOOD_KINDS = frozenset({"registered", "refreshed", "reachable"})


def contact_without_user(contact: str) -> str:
    """'sip:sa12@10.0.0.5:5060' → 'sip:10.0.0.5:5060': the address, without the SIP username."""
    return re.sub(r"(sips?:)[^@>;]*@", r"\1", contact or "", flags=re.IGNORECASE)


def failure_in_words(reason: str) -> str:
    """A reason code from the engine in words; text that is already words passes through."""
    reason = (reason or "").strip()
    return FAILURE_WORDS.get(reason.lower(), reason.replace("_", " "))


_CONTACT_HOST = re.compile(r"sips?:(?:[^@>;]*@)?(\[[^\]]+\]|[^:;>?\s]+)", re.IGNORECASE)


def _host_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _source_ip(source: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """'203.0.113.5:5060' or '[2001:db8::1]:5060' → the address."""
    host = (source or "").strip()
    if host.startswith("["):
        host = host[1:].split("]")[0]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    return _host_ip(host)


def sip_alg_suspected(*, contact: str, source: str) -> bool:
    """A private Contact arriving from a public address: a NAT or SIP ALG rewrote one but not the other."""
    match = _CONTACT_HOST.search(contact or "")
    contact_ip = _host_ip(match.group(1)) if match else None
    source_ip = _source_ip(source)
    return bool(contact_ip and source_ip and is_nat_address(contact_ip) and not is_nat_address(source_ip))


@dataclass(frozen=True)
class StatusView:
    state: str
    label: str
    status: TrunkStatus
    contact: str  # without the SIP username when shown to support staff
    last_failure: str
    sip_alg_hint: bool

    @property
    def is_registered(self) -> bool:
        return self.state == "registered"


def status_view(*, trunk: SipTrunk, hide_credentials: bool = False) -> StatusView:
    status = trunk_status(trunk=trunk)
    state = trunk_state(trunk=trunk)
    return StatusView(
        state=state,
        label=STATE_LABELS.get(state, state),
        status=status,
        contact=contact_without_user(status.contact) if hide_credentials else status.contact,
        last_failure=failure_in_words(status.last_failure) if status.last_failure else "",
        sip_alg_hint=sip_alg_suspected(contact=status.contact, source=status.source),
    )


# Only these keys of an event's detail are shown or returned by the API.
PUBLIC_DETAIL_KEYS = ("reason", "source", "transport", "user_agent", "contact", "expires", "latency_ms")


@dataclass(frozen=True)
class EventView:
    at: datetime
    kind: str
    result: str
    ok: bool
    source: str
    transport: str
    user_agent: str
    reason: str


def event_result(event: TrunkEvent) -> str:
    words = EVENT_WORDS.get(event.kind, event.kind.replace("_", " ").capitalize())
    reason = (event.detail or {}).get("reason")
    latency = (event.detail or {}).get("latency_ms")
    if reason:
        words = f"{words}: {failure_in_words(str(reason))}"
    elif event.kind == "reachable" and latency is not None:
        words = f"{words} in {float(latency):.0f} ms"
    return words


def event_view(event: TrunkEvent) -> EventView:
    detail = event.detail or {}
    return EventView(
        at=event.at,
        kind=event.kind,
        result=event_result(event),
        ok=event.kind in GOOD_KINDS,
        source=str(detail.get("source", "")),
        transport=str(detail.get("transport", "")).upper(),
        user_agent=str(detail.get("user_agent", "")),
        reason=failure_in_words(str(detail["reason"])) if detail.get("reason") else "",
    )


def public_detail(event: TrunkEvent) -> dict:
    return {k: v for k, v in (event.detail or {}).items() if k in PUBLIC_DETAIL_KEYS}
