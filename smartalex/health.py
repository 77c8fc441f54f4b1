"""/healthz: is the database reachable, is the broker reachable, is a SIP engine alive."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from smartalex.celery import app as celery_app
from smartalex.process_cache import process_cache

HEARTBEAT_KEY = "sipserver:heartbeat"


def record_sipserver_heartbeat(*, node: str, now: float | None = None) -> None:
    """Called by each engine every few seconds (from a worker thread: see process_cache); the
    newest beat wins."""
    process_cache().set(HEARTBEAT_KEY, {"node": node, "at": now or time.time()}, timeout=3600)


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 — a health check reports every failure
        return {"ok": False, "error": type(exc).__name__}


def _check_broker() -> dict:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}


def _check_sipserver() -> dict:
    try:
        beat = cache.get(HEARTBEAT_KEY)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}
    if not beat:
        return {"ok": False, "last_heartbeat": None}
    age = time.time() - beat["at"]
    return {
        "ok": age < 3 * settings.SIPSERVER_HEARTBEAT_SECONDS,
        "last_heartbeat_age_s": round(age, 1),
        "node": beat["node"],
    }


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "broker": _check_broker(), "sipserver": _check_sipserver()}
    # The portal is healthy without an engine; the engine's state is reported, not required.
    healthy = checks["database"]["ok"] and checks["broker"]["ok"]
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)
