"""Platform-level records the engine reports that belong to no workspace (support sees them)."""

from __future__ import annotations

from django.db import models


class SecurityEvent(models.Model):
    """Unknown usernames, bans, floods and scanners: visible to support, never to a workspace."""

    kind = models.CharField(max_length=32)
    source = models.CharField(max_length=64, db_index=True)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(db_index=True)
    event_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} from {self.source}"
