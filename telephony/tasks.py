"""The worker's side of the engine → portal boundary: thin, by value, safe to retry."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from telephony.events import SipTraceRecorded, decode
from trunks.status import trunk_events_apply


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=10)
def record_engine_events(events: list[dict]) -> int:
    from calls.services import CALL_EVENTS, call_events_apply
    from support.traces import trace_records_store

    decoded = [decode(e) for e in events]
    # Traces have their own table (support/); both writes skip event ids already stored, so a retry is safe.
    traces = [e for e in decoded if isinstance(e, SipTraceRecorded)]
    calls = [e for e in decoded if isinstance(e, CALL_EVENTS)]
    others = [e for e in decoded if not isinstance(e, (SipTraceRecorded, *CALL_EVENTS))]
    with transaction.atomic():  # one batch, one outcome: a retry never finds half of it applied
        return (
            trunk_events_apply(events=others)
            + trace_records_store(events=traces)
            + call_events_apply(events=calls)
        )
