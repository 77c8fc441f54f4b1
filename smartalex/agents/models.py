"""Agent Studio: the AI agents and their telephony settings."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from smartalex.tenancy.models import Tenant

DEFAULT_MAX_CALL_SECONDS = 300
MAX_CALL_SECONDS_LIMIT = 14_400
DEFAULT_SILENCE_TIMEOUT_SECONDS = 30


class Agent(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    first_message = models.TextField(blank=True)
    system_prompt = models.TextField(blank=True)
    voice = models.CharField(max_length=64, default="en-us")
    language = models.CharField(max_length=16, default="en-US")
    max_call_duration = models.PositiveIntegerField(
        default=DEFAULT_MAX_CALL_SECONDS,
        validators=[MinValueValidator(10), MaxValueValidator(MAX_CALL_SECONDS_LIMIT)],
        help_text="Seconds; the AI speaks a closing line and hangs up at the limit.",
    )
    silence_timeout = models.PositiveIntegerField(
        default=DEFAULT_SILENCE_TIMEOUT_SECONDS, validators=[MinValueValidator(5), MaxValueValidator(600)]
    )
    fallback_extension = models.CharField(max_length=64, blank=True)
    # The Telephony tab: the trunk whose calls this agent answers (one agent per trunk).
    trunk = models.OneToOneField(
        "trunks.SipTrunk", on_delete=models.SET_NULL, null=True, blank=True, related_name="agent"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="uniq_agent_name_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
