"""Call records: one row per inbound call on a trunk, written by the worker from engine events.

Readers (the call pages, /api/v1/calls, the support console and trunk health) can rely on:

- `outcome` (see `CallOutcome`) says how the call ended; `sip_status` is our final answer to
  the INVITE for `rejected` (403, 480, 503…) and 487 for `cancelled`;
- a transfer: `transfer_target` (extension), `transfer_method` ("refer" or "bridge"),
  `transfer_status` = the PBX's final code for it (202/200 success; 486, 603, 408 = no NOTIFY…),
  and the times it was requested, sent (REFER or bridged INVITE) and rang (the PBX's 180);
  `outcome` is `transfer_failed` when the last attempt failed and the call then ended;
- `understanding` is the receptionist's `Understanding.as_dict()`: text, extension, method,
  confidence, heard_at/decided_at (loop seconds) and every turn;
- `sip_call_id` is the INVITE's Call-ID: the key of the call's SIP trace (SipTraceRecorded).

Calls to a number no trunk owns (404) have no record: they belong to no workspace. When the
PBX of a known trunk sent it, the trunk's health names the number (`CallForUnknownDid`).
"""

from __future__ import annotations

from django.db import models

from smartalex.tenancy.models import Tenant


class CallOutcome(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    ANSWERED = "answered", "Answered (ended by the agent)"
    TRANSFERRED = "transferred", "Transferred"
    TRANSFER_FAILED = "transfer_failed", "Transfer failed"
    CALLER_HUNG_UP = "caller_hung_up", "Caller hung up"
    CANCELLED = "cancelled", "Caller hung up while ringing"
    REJECTED = "rejected", "Rejected"


class Call(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="calls")
    trunk = models.ForeignKey("trunks.SipTrunk", on_delete=models.SET_NULL, null=True, related_name="calls")
    agent = models.ForeignKey(
        "agents.Agent", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    call_ref = models.CharField(max_length=32, unique=True, help_text="The engine's id for the call")
    sip_call_id = models.CharField(max_length=255, blank=True, db_index=True)
    did = models.CharField(max_length=16, blank=True)
    caller = models.CharField(max_length=64, blank=True)
    caller_name = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=20, choices=CallOutcome.choices, default=CallOutcome.IN_PROGRESS)
    sip_status = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    hangup_reason = models.CharField(max_length=64, blank=True)
    codec = models.CharField(max_length=8, blank=True)
    dtmf = models.CharField(max_length=64, blank=True)
    transfer_target = models.CharField(max_length=64, blank=True)
    transfer_method = models.CharField(max_length=8, blank=True)
    transfer_status = models.PositiveSmallIntegerField(null=True, blank=True)
    transfer_reason = models.CharField(max_length=200, blank=True)
    transfer_requested_at = models.DateTimeField(null=True, blank=True)
    transfer_sent_at = models.DateTimeField(null=True, blank=True)
    transfer_ringing_at = models.DateTimeField(null=True, blank=True)
    understanding = models.JSONField(null=True, blank=True)
    invited_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-invited_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-invited_at"]),
            models.Index(fields=["trunk", "-invited_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.caller or 'unknown'} → {self.did} ({self.outcome})"

    @property
    def duration_seconds(self) -> float | None:
        start = self.answered_at or self.invited_at
        if start is None or self.ended_at is None:
            return None
        return round((self.ended_at - start).total_seconds(), 1)

    @staticmethod
    def _ms(start, end) -> int | None:
        if start is None or end is None:
            return None
        return round((end - start).total_seconds() * 1000)

    @property
    def refer_delay_ms(self) -> int | None:
        """From the caller's request (the agent's decision) to the REFER on the wire."""
        return self._ms(self.transfer_requested_at, self.transfer_sent_at)

    @property
    def ringing_delay_ms(self) -> int | None:
        """From the caller's request to the PBX's 180 for the extension."""
        return self._ms(self.transfer_requested_at, self.transfer_ringing_at)
