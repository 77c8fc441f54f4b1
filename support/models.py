"""What support and trunk health keep: SIP traces, the audit of support access, trunk alerts.

A separate app from `trunks` on purpose: everything here may read across workspaces (the support
console), so the customer-facing trunk code never needs a query without a tenant.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from smartalex.tenancy.models import Tenant
from trunks.models import SipTrunk


class SipTrace(models.Model):
    """One REGISTER exchange or one call as the engine saw it on the wire.

    `trunk`/`tenant` are empty for a REGISTER whose username matched no trunk: such a trace is
    platform-level and only support sees it. `username` is what the PBX claimed; support sees it
    only on those unmatched traces (on a trunk's trace it is that trunk's credential).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    trunk = models.ForeignKey(
        SipTrunk, on_delete=models.CASCADE, null=True, blank=True, related_name="traces"
    )
    kind = models.CharField(max_length=16)  # register | call
    call_id = models.CharField(max_length=256)
    outcome = models.CharField(max_length=128, blank=True)
    username = models.CharField(max_length=128, blank=True)
    at = models.DateTimeField(db_index=True)
    # [{at, direction, transport, src, dst, text}], in wire order.
    messages = models.JSONField(default=list)
    event_id = models.UUIDField(unique=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["trunk", "-at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.call_id} ({self.outcome})"


class AccessKind(models.TextChoices):
    HEALTH = "health", "Opened the trunk's health page"
    TRACE = "trace", "Opened a SIP trace"
    PCAP = "pcap", "Downloaded a SIP trace as .pcap"
    BUNDLE = "bundle", "Downloaded the support bundle"
    PROBE = "probe", "Ran a probe against the PBX"


class SupportAccess(models.Model):
    """Who on the support staff looked at what of a workspace, and when (shown to its Owner)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=AccessKind.choices)
    trunk = models.ForeignKey(SipTrunk, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Words that still mean something after the trunk is deleted.
    subject = models.CharField(max_length=256)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["tenant", "-at"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.subject}"


class AlertKind(models.TextChoices):
    DOWN = "down", "Trunk down"
    FLAPPING = "flapping", "Registration flapping"


class TrunkAlert(models.Model):
    """One incident: opened (and notified) once, closed (and notified) once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    trunk = models.ForeignKey(SipTrunk, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    state_seen = models.CharField(max_length=16, blank=True)  # the state that opened it
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # At most one open incident of a kind per trunk: the sweep can run twice safely.
            models.UniqueConstraint(
                fields=["trunk", "kind"], condition=models.Q(closed_at__isnull=True), name="uniq_open_alert"
            )
        ]

    def __str__(self) -> str:
        return f"{self.trunk_id} {self.kind} {'open' if self.is_open else 'closed'}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
