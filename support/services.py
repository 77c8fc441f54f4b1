"""Writes for support: the access audit, support bundles, and trunk alerts."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from smartalex.tenancy.models import Membership, Role, User
from trunks.models import RegistrationState, SipTrunk, TrunkEvent
from trunks.presentation import contact_without_user, event_result, public_detail
from trunks.selectors import trunk_status

from .diagnosis import diagnose
from .models import AccessKind, AlertKind, SupportAccess, TrunkAlert
from .selectors import _flapping_ids, trunk_facts
from .traces import Redaction, mask_numbers, trace_list, trace_messages

log = logging.getLogger("support")

BUNDLE_TRACES = 20
BUNDLE_EVENTS = 200


def support_access_record(
    *, user: User, trunk: SipTrunk, kind: AccessKind, subject: str = ""
) -> SupportAccess | None:
    """Records a support-staff view of a workspace's data; a workspace member's own view is not audited."""
    if not user.is_support:
        return None
    return SupportAccess.objects.create(
        tenant_id=trunk.tenant_id,
        user=user,
        kind=kind,
        trunk=trunk,
        subject=(subject or f"trunk “{trunk.name}”")[:256],
    )


# --- support bundle ----------------------------------------------------------------------------


def support_bundle_build(*, trunk: SipTrunk, now: datetime | None = None) -> dict:
    """Settings, status, history, findings and recent traces of a trunk, with no credential in it.

    Left out: the auth username, both HA1 values and any password (never stored). Masked: every
    phone number (DIDs, callers) but its last 4 digits. Redacted: digest values in the traces.
    """
    now = now or timezone.now()
    status = trunk_status(trunk=trunk)
    redaction = Redaction(username=trunk.auth_username or "", numbers=True)
    bundle = {
        "generated_at": now.isoformat(),
        "workspace": trunk.tenant.name,
        "trunk": {
            "id": trunk.pk,
            "name": trunk.name,
            "pbx_vendor": trunk.pbx_vendor,
            "pbx_domain": trunk.pbx_domain,
            "auth_type": trunk.auth_type,
            "transport": trunk.transport,
            "codecs": list(trunk.codecs),
            "max_concurrent_calls": trunk.max_concurrent_calls,
            "allowed_ips": list(trunk.allowed_ips),
            "suspended": trunk.is_suspended,
            "credentials_rotated_at": trunk.credentials_rotated_at.isoformat()
            if trunk.credentials_rotated_at
            else None,
            "dids": [mask_numbers(number) for number in trunk.dids.values_list("number", flat=True)],
        },
        "status": {
            "state": status.state,
            "contact": contact_without_user(status.contact),
            "source": status.source,
            "transport": status.transport,
            "user_agent": status.user_agent,
            "registered_at": status.registered_at.isoformat() if status.registered_at else None,
            "last_register_at": status.last_register_at.isoformat() if status.last_register_at else None,
            "expires_at": status.expires_at.isoformat() if status.expires_at else None,
            "options_latency_ms": status.options_latency_ms,
            "last_failure": status.last_failure,
        },
        "diagnosis": [
            {"severity": str(f.severity), "words": f.words, "fix": f.fix, "code": f.code}
            for f in diagnose(trunk_facts(trunk=trunk, now=now))
        ],
        "history": [
            {"at": e.at.isoformat(), "kind": e.kind, "result": event_result(e), "detail": public_detail(e)}
            for e in TrunkEvent.objects.filter(trunk=trunk).order_by("-at", "-pk")[:BUNDLE_EVENTS]
        ],
        "traces": [
            {
                "at": t.at.isoformat(),
                "kind": t.kind,
                "call_id": t.call_id,
                "outcome": t.outcome,
                "messages": trace_messages(trace=t, redaction=redaction),
            }
            for t in trace_list(trunk=trunk)[:BUNDLE_TRACES]
        ],
    }
    # Belt and braces: whatever a future field adds, the credential and numbers do not leave.
    text = redaction.apply(json.dumps(bundle))
    return json.loads(text)


# --- alerts ------------------------------------------------------------------------------------


def _recipients(tenant_id: int) -> list[str]:
    return list(
        Membership.objects.filter(tenant_id=tenant_id, role__in=(Role.OWNER, Role.ADMIN))
        .values_list("user__email", flat=True)
        .order_by("user__email")
    )


def _notify(alert: TrunkAlert, *, recovered: bool) -> None:
    trunk = alert.trunk
    what = "is down" if alert.kind == AlertKind.DOWN else "is flapping"
    if recovered:
        subject = f"Recovered: trunk “{trunk.name}” " + (
            "is back up" if alert.kind == AlertKind.DOWN else "is stable"
        )
    else:
        subject = f"Alert: trunk “{trunk.name}” {what}"
    link = reverse("support:trunk-health", args=[trunk.pk])
    body = (
        f"{subject}.\n\nWorkspace: {trunk.tenant.name}\nSince: {alert.opened_at:%Y-%m-%d %H:%M} UTC\n"
        + (f"Recovered: {alert.closed_at:%Y-%m-%d %H:%M} UTC\n" if recovered and alert.closed_at else "")
        + f"\nThe trunk's health page explains why: {link}\n"
    )
    recipients = _recipients(trunk.tenant_id)
    if recipients:
        send_mail(subject, body, None, recipients)


def _down_since(trunk: SipTrunk, now: datetime) -> datetime | None:
    """When the trunk went down, if it is down; a trunk that never registered is not 'down'."""
    if trunk.is_suspended:
        return None  # suspended on purpose: nothing to alert
    status = trunk_status(trunk=trunk)
    if status.state == RegistrationState.UNREACHABLE:
        last = (
            TrunkEvent.objects.filter(trunk=trunk, kind="unreachable")
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        return last or status.updated_at
    if status.state == RegistrationState.NOT_REGISTERED and status.registered_at is not None:
        return status.expires_at or status.updated_at
    return None


def _open(trunk: SipTrunk, kind: AlertKind, since: datetime, state: str) -> TrunkAlert | None:
    try:
        with transaction.atomic():
            alert = TrunkAlert.objects.create(
                tenant_id=trunk.tenant_id, trunk=trunk, kind=kind, opened_at=since, state_seen=state
            )
    except IntegrityError:
        return None  # another sweep opened it first: notified once
    _notify(alert, recovered=False)
    return alert


def _close(alert: TrunkAlert, now: datetime) -> bool:
    # The conditional update is the lock: of two sweeps, one closes and notifies.
    if not TrunkAlert.objects.filter(pk=alert.pk, closed_at__isnull=True).update(closed_at=now):
        return False
    alert.closed_at = now
    _notify(alert, recovered=True)
    return True


def alerts_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Opens an alert per trunk down longer than TRUNK_ALERT_DOWN_MINUTES or flapping, closes those
    that recovered; each opening and closing e-mails the workspace's Owners and Admins once."""
    now = now or timezone.now()
    threshold = timedelta(minutes=settings.TRUNK_ALERT_DOWN_MINUTES)
    opened = closed = 0
    open_alerts = {
        (a.trunk_id, a.kind): a
        for a in TrunkAlert.objects.filter(closed_at__isnull=True).select_related("trunk__tenant")
    }
    flapping = set(_flapping_ids(now).values_list("trunk_id", flat=True))
    candidates = SipTrunk.objects.select_related("tenant", "status").filter(
        pk__in=set(flapping) | {trunk_id for trunk_id, _ in open_alerts}
    ) | SipTrunk.objects.select_related("tenant", "status").filter(
        suspended_at__isnull=True,
        status__state__in=(RegistrationState.NOT_REGISTERED, RegistrationState.UNREACHABLE),
    )
    for trunk in candidates.distinct():
        since = _down_since(trunk, now)
        is_down = since is not None and now - since >= threshold
        down_alert = open_alerts.get((trunk.pk, AlertKind.DOWN))
        if is_down and down_alert is None:
            opened += _open(trunk, AlertKind.DOWN, since, trunk_status(trunk=trunk).state) is not None
        elif since is None and down_alert is not None:
            closed += _close(down_alert, now)
        flap_alert = open_alerts.get((trunk.pk, AlertKind.FLAPPING))
        if trunk.pk in flapping and flap_alert is None:
            opened += _open(trunk, AlertKind.FLAPPING, now, "flapping") is not None
        elif trunk.pk not in flapping and flap_alert is not None:
            closed += _close(flap_alert, now)
    return {"opened": opened, "closed": closed}


# --- probes (run by the worker: support/tasks.py) ------------------------------------------------


def _probe_record(trunk: SipTrunk, kind: str, detail: dict) -> TrunkEvent:
    return TrunkEvent.objects.create(
        tenant_id=trunk.tenant_id, trunk=trunk, kind=kind, detail=detail, at=timezone.now()
    )


def trunk_probe_options(*, trunk: SipTrunk) -> TrunkEvent:
    """Sends OPTIONS to where the PBX registered from; the round trip lands in the trunk's history."""
    import asyncio

    from .probes import ProbeResult, options_probe

    source = trunk_status(trunk=trunk).source
    if not source:
        result = ProbeResult(False, None, "the PBX has not registered: no address to probe", None)
    else:
        result = asyncio.run(options_probe(source=source, pbx_domain=trunk.pbx_domain))
    return _probe_record(trunk, "options_probe", result.as_detail())


def trunk_probe_call(*, trunk: SipTrunk, extension: str) -> TrunkEvent:
    """Rings `extension` on the PBX (sip:EXT@pbx_domain) and reports whether it rang within 3 s."""
    import asyncio

    from .probes import ProbeResult, call_probe

    source = trunk_status(trunk=trunk).source
    if not source:
        result = ProbeResult(False, None, "the PBX has not registered: no address to call", None)
    else:
        result = asyncio.run(call_probe(source=source, pbx_domain=trunk.pbx_domain, extension=extension))
    return _probe_record(trunk, "test_call_probe", {**result.as_detail(), "extension": extension})
