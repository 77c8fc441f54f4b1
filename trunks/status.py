"""Applies the engine's events to a trunk's current status and history (called by the worker)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import transaction

from telephony import events as ev
from telephony.models import SecurityEvent

from .models import RegistrationState, SipTrunk, TrunkEvent, TrunkStatus

# The portal's words for each reason the engine gives (the troubleshooting guide's symptoms).
FAILURE_WORDS = {
    "wrong_password": "wrong password",
    "unknown_user": "username not found",
    "wrong_realm": "wrong realm (leave the realm blank on the PBX)",
    "stale_nonce": "stale nonce (the PBX answered an expired challenge)",
    "bad_nonce": "invalid nonce",
    "replay": "replayed credentials refused",
    "unsupported_algorithm": "unsupported digest algorithm",
    "unsupported_scheme": "unsupported authentication scheme",
    "malformed": "malformed credentials",
    "suspended": "trunk suspended",
}


def failure_in_words(reason: str) -> str:
    return FAILURE_WORDS.get(reason, reason.replace("_", " "))


def _when(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


@transaction.atomic
def trunk_events_apply(*, events: Iterable[ev.EngineEvent]) -> int:
    """Records each event once (by its id) and moves the trunk's status forward. Returns rows written."""
    events = list(events)
    trunk_ids = {e.trunk_id for e in events if getattr(e, "trunk_id", None) is not None}
    trunks = {t.pk: t for t in SipTrunk.objects.filter(pk__in=trunk_ids)}
    statuses = {s.trunk_id: s for s in TrunkStatus.objects.select_for_update().filter(trunk_id__in=trunk_ids)}
    history: list[TrunkEvent] = []
    security: list[SecurityEvent] = []
    for event in sorted(events, key=lambda e: e.at):
        trunk = trunks.get(getattr(event, "trunk_id", None))
        if trunk is None:
            if isinstance(event, ev.RegisterAuthFailed):
                security.append(
                    SecurityEvent(
                        kind=f"auth_failed:{event.reason}",
                        source=event.source,
                        detail={
                            "username": event.username,
                            "user_agent": event.user_agent,
                            "transport": event.transport,
                        },
                        at=_when(event.at),
                        event_id=event.event_id,
                    )
                )
            continue  # the trunk was deleted since
        status = statuses.get(trunk.pk) or TrunkStatus(trunk=trunk, tenant_id=trunk.tenant_id)
        statuses[trunk.pk] = status
        row = _apply(status, event)
        if row is not None:
            history.append(
                TrunkEvent(
                    tenant_id=trunk.tenant_id,
                    trunk=trunk,
                    kind=row[0],
                    detail=row[1],
                    at=_when(event.at),
                    event_id=event.event_id,
                )
            )
    for status in statuses.values():
        status.save()
    TrunkEvent.objects.bulk_create(history, ignore_conflicts=True)
    SecurityEvent.objects.bulk_create(security, ignore_conflicts=True)
    return len(history) + len(security)


def _apply(status: TrunkStatus, event: ev.EngineEvent) -> tuple[str, dict] | None:
    at = _when(event.at)
    match event:
        case ev.TrunkRegistered():
            if status.state != RegistrationState.REGISTERED:
                status.registered_at = at
            status.state = RegistrationState.REGISTERED
            status.contact, status.source, status.transport = event.contact, event.source, event.transport
            status.user_agent = event.user_agent[:256]
            status.last_register_at, status.expires_at = at, at + timedelta(seconds=event.expires)
            if event.warnings:
                status.last_failure, status.last_failure_at = "; ".join(event.warnings)[:256], at
            return "registered", {
                "contact": event.contact,
                "source": event.source,
                "transport": event.transport,
                "user_agent": event.user_agent,
                "expires": event.expires,
                "warnings": list(event.warnings),
            }
        case ev.TrunkRefreshed():
            if status.last_register_at and at < status.last_register_at:
                return None  # a late batch: the status is already newer
            status.state = RegistrationState.REGISTERED
            status.last_register_at, status.expires_at = at, at + timedelta(seconds=event.expires)
            return None  # refreshes are status, not history: one every minute per trunk would drown it
        case ev.TrunkUnregistered():
            status.state, status.expires_at = RegistrationState.NOT_REGISTERED, at
            return "unregistered", {"source": event.source}
        case ev.TrunkExpired():
            if status.expires_at and status.expires_at > at:
                return None  # refreshed after the sweep decided
            status.state = RegistrationState.NOT_REGISTERED
            return "expired", {"contact": event.contact}
        case ev.RegisterAuthFailed():
            status.last_failure, status.last_failure_at = failure_in_words(event.reason), at
            return "auth_failed", {
                "reason": event.reason,
                "words": failure_in_words(event.reason),
                "source": event.source,
                "transport": event.transport,
                "user_agent": event.user_agent,
            }
        case ev.CallForUnknownDid():
            # History only: the registration is fine, the PBX's inbound route is not.
            words = f"{event.number or 'the number dialled'} is not a DID of this trunk (answered 404)"
            return "call_not_routed", {"reason": words, "number": event.number, "source": event.source}
        case ev.TrunkReachability():
            was_unreachable = status.state == RegistrationState.UNREACHABLE
            if event.reachable:
                status.options_latency_ms = event.latency_ms
                if was_unreachable:
                    status.state = (
                        RegistrationState.REGISTERED
                        if status.expires_at and status.expires_at > at
                        else RegistrationState.NOT_REGISTERED
                    )
                    return "reachable", {"latency_ms": event.latency_ms}
                return None
            if not was_unreachable:
                status.state = RegistrationState.UNREACHABLE
                return "unreachable", {}
            return None
    return None
