"""The worker's side of the engine → portal boundary: thin, by value, safe to retry."""

from __future__ import annotations

from celery import shared_task

from telephony.events import decode
from trunks.status import trunk_events_apply


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=10)
def record_engine_events(events: list[dict]) -> int:
    return trunk_events_apply(events=[decode(e) for e in events])
