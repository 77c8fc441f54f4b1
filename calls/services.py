"""Writes of call records: the worker applies the engine's call events (telephony/events.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import transaction

from telephony import events as ev
from trunks.models import SipTrunk

from .models import Call, CallOutcome

CALL_EVENTS = (ev.CallStarted, ev.CallAnswered, ev.CallTransferred, ev.CallEnded)


def _when(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, tz=UTC)


@transaction.atomic
def call_events_apply(*, events: Iterable[ev.EngineEvent]) -> int:
    """Creates or updates the record of each call the events name. Safe to apply twice and in
    any batch order: every event carries the workspace and trunk, and sets only its own fields
    (a later transfer attempt replaces an earlier one). Returns the records touched."""
    events = sorted((e for e in events if isinstance(e, CALL_EVENTS)), key=lambda e: e.at)
    if not events:
        return 0
    refs = {e.call_ref for e in events}
    records = {c.call_ref: c for c in Call.objects.select_for_update().filter(call_ref__in=refs)}
    trunks = dict(SipTrunk.objects.filter(pk__in={e.trunk_id for e in events}).values_list("pk", "tenant_id"))
    for event in events:
        if trunks.get(event.trunk_id) != event.tenant_id:
            continue  # the trunk was deleted (or moved) since: nothing to attach the call to
        record = records.get(event.call_ref)
        if record is None:
            record = records[event.call_ref] = Call(
                call_ref=event.call_ref, tenant_id=event.tenant_id, trunk_id=event.trunk_id
            )
        _apply(record, event)
    for record in records.values():
        record.save()
    return len(records)


def _apply(record: Call, event: ev.EngineEvent) -> None:
    match event:
        case ev.CallStarted():
            record.sip_call_id = event.sip_call_id
            record.did, record.caller, record.caller_name = event.did, event.caller, event.caller_name
            record.agent_id = event.agent_id
            record.invited_at = _when(event.at)
        case ev.CallAnswered():
            record.codec, record.answered_at = event.codec, _when(event.at)
        case ev.CallTransferred():
            requested = _when(event.requested_at)
            if record.transfer_requested_at and requested and requested < record.transfer_requested_at:
                return  # an earlier attempt applied late: the record keeps the last one
            record.transfer_target, record.transfer_method = event.target, event.method
            record.transfer_status, record.transfer_reason = event.status, event.reason
            record.transfer_requested_at = _when(event.requested_at)
            record.transfer_sent_at = _when(event.sent_at)
            record.transfer_ringing_at = _when(event.ringing_at)
            if record.outcome == CallOutcome.TRANSFER_FAILED and event.accepted:
                record.outcome = CallOutcome.TRANSFERRED
            elif record.ended_at is not None and not event.accepted:
                record.outcome = _outcome(record, record.outcome)  # the end came in an earlier batch
        case ev.CallEnded():
            record.outcome = _outcome(record, event.outcome)
            record.sip_status, record.reason = event.sip_status, event.reason
            record.dtmf, record.understanding = event.dtmf, event.understanding
            record.hangup_reason = event.hangup_reason
            record.ended_at = _when(event.at)


def _outcome(record: Call, ended: str) -> str:
    """The engine says how the call ended; the record also says whether its last transfer
    attempt failed, which is what a customer looks for ("transfer fires but nothing rings")."""
    outcome = ended if ended in CallOutcome.values else CallOutcome.ANSWERED
    last_transfer_failed = (
        record.transfer_target and record.transfer_status is not None and (record.transfer_status >= 300)
    )
    if outcome in (CallOutcome.ANSWERED, CallOutcome.CALLER_HUNG_UP) and last_transfer_failed:
        return CallOutcome.TRANSFER_FAILED
    return outcome
