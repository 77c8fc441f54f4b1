"""SIP trunks, their DIDs, and the registration status the engine reports for them."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from smartalex.tenancy.models import Tenant


class AuthType(models.TextChoices):
    CREDENTIALS = "credentials", "Credentials"
    IP_WHITELIST = "ip", "IP Whitelist"
    BOTH = "both", "Credentials and IP Whitelist"


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"


class PbxVendor(models.TextChoices):
    OTHER = "other", "Other"
    THREECX = "3cx", "3CX"
    FREEPBX = "freepbx", "FreePBX"
    ASTERISK = "asterisk", "Asterisk"
    YEASTAR = "yeastar", "Yeastar"
    GRANDSTREAM = "grandstream", "Grandstream"
    CISCO = "cisco", "Cisco CUCM / CUBE"
    AVAYA = "avaya", "Avaya"
    MITEL = "mitel", "Mitel"
    TEAMS = "teams", "Microsoft Teams Direct Routing"


DEFAULT_CODECS = ["PCMU", "PCMA", "G722"]
DEFAULT_MAX_CONCURRENT_CALLS = 10


def default_codecs() -> list[str]:
    return list(DEFAULT_CODECS)


class SipTrunk(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="trunks")
    name = models.CharField(max_length=100)
    pbx_vendor = models.CharField(max_length=16, choices=PbxVendor.choices, default=PbxVendor.OTHER)
    # Transfers are addressed to sip:EXT@pbx_domain, so it is required.
    pbx_domain = models.CharField(max_length=253)
    auth_type = models.CharField(max_length=16, choices=AuthType.choices, default=AuthType.CREDENTIALS)
    # Unique across the platform: the digest username alone identifies the trunk.
    auth_username = models.CharField(max_length=64, unique=True, null=True, blank=True)
    # Only digest HA1 values are kept (MD5 and SHA-256); the password itself is shown once.
    ha1_md5 = models.CharField(max_length=32, blank=True)
    ha1_sha256 = models.CharField(max_length=64, blank=True)
    credentials_rotated_at = models.DateTimeField(null=True, blank=True)
    allowed_ips = models.JSONField(default=list, blank=True, help_text="Addresses or CIDR blocks.")
    codecs = models.JSONField(default=default_codecs)
    transport = models.CharField(max_length=8, choices=Transport.choices, default=Transport.UDP)
    dtmf_mode = models.CharField(max_length=16, default="rfc2833", editable=False)
    max_concurrent_calls = models.PositiveIntegerField(
        default=DEFAULT_MAX_CONCURRENT_CALLS, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="uniq_trunk_name_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    @property
    def uses_credentials(self) -> bool:
        return self.auth_type in (AuthType.CREDENTIALS, AuthType.BOTH)

    @property
    def uses_ip_whitelist(self) -> bool:
        return self.auth_type in (AuthType.IP_WHITELIST, AuthType.BOTH)


class Did(models.Model):
    """A phone number (E.164) that rings the trunk's agent. Unique across the platform."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="dids")
    trunk = models.ForeignKey(SipTrunk, on_delete=models.CASCADE, related_name="dids")
    number = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class RegistrationState(models.TextChoices):
    REGISTERED = "registered", "Registered"
    NOT_REGISTERED = "not_registered", "Not registered"
    UNREACHABLE = "unreachable", "Unreachable"


class TrunkStatus(models.Model):
    """The trunk's current state as last reported by the engine (written by the worker only)."""

    trunk = models.OneToOneField(SipTrunk, on_delete=models.CASCADE, related_name="status")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(
        max_length=16, choices=RegistrationState.choices, default=RegistrationState.NOT_REGISTERED
    )
    contact = models.CharField(max_length=512, blank=True)
    source = models.CharField(max_length=64, blank=True, help_text="ip:port the REGISTER came from")
    transport = models.CharField(max_length=8, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    last_register_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    options_latency_ms = models.FloatField(null=True, blank=True)
    last_failure = models.CharField(max_length=256, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.trunk_id}: {self.state}"


class TrunkEvent(models.Model):
    """The trunk's history: registrations, refreshes, expiries, failures, reachability."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    trunk = models.ForeignKey(SipTrunk, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(db_index=True)
    # The engine's id for the event: a retried Celery task must not record it twice.
    event_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["trunk", "-at"])]

    def __str__(self) -> str:
        return f"{self.trunk_id} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"
