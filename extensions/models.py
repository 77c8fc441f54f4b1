"""The extension directory of a trunk, and the CSV imports that fill it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from smartalex.tenancy.models import Tenant


class Extension(models.Model):
    """A PBX extension the AI can transfer to: `sip:<number>@<trunk.pbx_domain>`."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="extensions")
    trunk = models.ForeignKey("trunks.SipTrunk", on_delete=models.CASCADE, related_name="extensions")
    number = models.CharField(max_length=32)
    display_name = models.CharField(max_length=100)
    owner = models.CharField(max_length=100, blank=True)
    department = models.CharField(max_length=100, blank=True)
    # What callers may say instead of the display name ("sarah", "sales team"), in the file's order.
    aliases = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trunk", "number"], name="uniq_extension_per_trunk")]
        indexes = [models.Index(fields=["tenant", "trunk"])]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"


class ImportMode(models.TextChoices):
    MERGE = "merge", "Add and update (keep extensions not in the file)"
    REPLACE = "replace", "Replace the whole directory (delete extensions not in the file)"


class ImportStatus(models.TextChoices):
    VALIDATING = "validating", "Checking the file"
    PREVIEWED = "previewed", "Ready to import"
    REJECTED = "rejected", "The file has errors"
    COMMITTING = "committing", "Importing"
    COMMITTED = "committed", "Imported"
    FAILED = "failed", "Not imported"


class DirectoryImport(models.Model):
    """One uploaded file on its way from preview to commit.

    The `token` is the idempotency key of the commit step: only the request that moves the row
    from PREVIEWED to COMMITTING imports, so a double-click imports once. The decoded file is
    kept here (not in memory, not on a web server's disk) so a worker on any machine can stream it;
    it is emptied once the import is over.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    trunk = models.ForeignKey("trunks.SipTrunk", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    mode = models.CharField(max_length=16, choices=ImportMode.choices, default=ImportMode.MERGE)
    filename = models.CharField(max_length=255, blank=True)
    content = models.TextField(blank=True)
    estimated_rows = models.PositiveIntegerField(default=0)
    background = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.VALIDATING)
    # What the directory looked like when the preview was made; the commit refuses if it changed.
    directory_fingerprint = models.CharField(max_length=128, blank=True)
    preview = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    committed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.token} ({self.status})"

    @property
    def is_running(self) -> bool:
        return self.status in (ImportStatus.VALIDATING, ImportStatus.COMMITTING)
