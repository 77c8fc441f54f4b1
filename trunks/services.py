"""Writes for trunks, their credentials and DIDs. Every change tells the engines to reload."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from smartalex.errors import ApplicationError
from smartalex.tenancy.models import Tenant
from telephony.sip.digest import ha1

from .config_version import config_changed
from .models import AuthType, Did, PbxVendor, SipTrunk, Transport, TrunkStatus, default_codecs
from .validators import (
    normalise_e164,
    validate_allowed_ips,
    validate_codecs,
    validate_pbx_domain,
    validate_sip_password,
    validate_sip_username,
)

PASSWORD_LENGTH = 24
# Letters and digits only: some PBX web forms and config files mangle punctuation.
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
_USERNAME_ALPHABET = string.ascii_lowercase + string.digits


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        # At least one of each class, so strict PBX password rules accept it.
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


def generate_username() -> str:
    return "sa" + "".join(secrets.choice(_USERNAME_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class TrunkSettings:
    """What a customer may set on a trunk (the wizard's fields and Advanced)."""

    name: str
    pbx_domain: str
    auth_type: str = AuthType.CREDENTIALS
    pbx_vendor: str = PbxVendor.OTHER
    allowed_ips: tuple[str, ...] = ()
    codecs: tuple[str, ...] = tuple(default_codecs())
    transport: str = Transport.UDP
    max_concurrent_calls: int = 10

    @classmethod
    def of(cls, trunk: SipTrunk) -> TrunkSettings:
        """The trunk's current settings, to change a few of them with dataclasses.replace()."""
        return cls(
            name=trunk.name,
            pbx_domain=trunk.pbx_domain,
            auth_type=trunk.auth_type,
            pbx_vendor=trunk.pbx_vendor,
            allowed_ips=tuple(trunk.allowed_ips),
            codecs=tuple(trunk.codecs),
            transport=trunk.transport,
            max_concurrent_calls=trunk.max_concurrent_calls,
        )


@sensitive_variables("password")
def _set_password(trunk: SipTrunk, username: str, password: str) -> None:
    realm = settings.SIP_DOMAIN
    trunk.auth_username = username
    trunk.ha1_md5 = ha1("MD5", username, realm, password)
    trunk.ha1_sha256 = ha1("SHA-256", username, realm, password)
    trunk.credentials_rotated_at = timezone.now()


def _apply(trunk: SipTrunk, values: TrunkSettings) -> None:
    trunk.name = values.name.strip()
    if not trunk.name:
        raise ApplicationError("Give the trunk a name you will recognise later.", extra={"field": "name"})
    if SipTrunk.objects.filter(tenant=trunk.tenant, name__iexact=trunk.name).exclude(pk=trunk.pk).exists():
        raise ApplicationError(
            f"This workspace already has a trunk called “{trunk.name}”.", extra={"field": "name"}
        )
    trunk.pbx_domain = validate_pbx_domain(values.pbx_domain)
    trunk.pbx_vendor = values.pbx_vendor
    trunk.auth_type = values.auth_type
    trunk.allowed_ips = validate_allowed_ips(values.allowed_ips) if trunk.uses_ip_whitelist else []
    if trunk.uses_ip_whitelist and not trunk.allowed_ips:
        raise ApplicationError(
            "IP Whitelist needs at least one address or CIDR block.", extra={"field": "allowed_ips"}
        )
    trunk.codecs = validate_codecs(values.codecs)
    trunk.transport = values.transport
    trunk.max_concurrent_calls = values.max_concurrent_calls


def _save(trunk: SipTrunk) -> None:
    try:
        trunk.full_clean(exclude=["tenant"])
    except ValidationError as exc:
        raise ApplicationError(
            "The trunk's settings are not valid.", extra={"fields": exc.message_dict}
        ) from exc
    try:
        with transaction.atomic():
            trunk.save()
    except IntegrityError as exc:
        raise ApplicationError("That name or username is already taken.") from exc


@sensitive_variables("password", "plain")
@transaction.atomic
def trunk_create(
    *, tenant: Tenant, values: TrunkSettings, username: str | None = None, password: str | None = None
) -> tuple[SipTrunk, str | None]:
    """Returns the trunk and the plain password (None for IP-only trunks), never stored or shown again."""
    trunk = SipTrunk(tenant=tenant)
    _apply(trunk, values)
    plain = None
    if trunk.uses_credentials:
        username = validate_sip_username(username) if (username or "").strip() else generate_username()
        if SipTrunk.objects.filter(auth_username=username).exists():
            raise ApplicationError("That username is already taken.", extra={"field": "auth_username"})
        plain = validate_sip_password(password) if password else generate_password()
        _set_password(trunk, username, plain)
    _save(trunk)
    TrunkStatus.objects.create(trunk=trunk, tenant=tenant)
    config_changed()
    return trunk, plain


@transaction.atomic
def trunk_update(*, trunk: SipTrunk, values: TrunkSettings) -> SipTrunk:
    had_credentials = trunk.uses_credentials
    _apply(trunk, values)
    if trunk.uses_credentials and not had_credentials:
        raise ApplicationError(
            "Switching a trunk to credentials needs new credentials: click “Create credentials” "
            "(POST regenerate-password in the API), which shows the new password once.",
            extra={"field": "auth_type"},
        )
    if not trunk.uses_credentials:
        trunk.auth_username, trunk.ha1_md5, trunk.ha1_sha256 = None, "", ""
    _save(trunk)
    config_changed()
    return trunk


@sensitive_variables("plain")
@transaction.atomic
def trunk_regenerate_password(*, trunk: SipTrunk) -> str:
    """Rotates the password (and keeps the username); returns the new one, shown once."""
    plain = generate_password()
    if trunk.auth_type == AuthType.IP_WHITELIST:
        trunk.auth_type = AuthType.BOTH
    _set_password(trunk, trunk.auth_username or generate_username(), plain)
    _save(trunk)
    config_changed()
    return plain


def trunk_suspend(*, trunk: SipTrunk) -> SipTrunk:
    trunk.suspended_at = timezone.now()
    trunk.save(update_fields=["suspended_at", "updated_at"])
    config_changed()
    return trunk


def trunk_reactivate(*, trunk: SipTrunk) -> SipTrunk:
    trunk.suspended_at = None
    trunk.save(update_fields=["suspended_at", "updated_at"])
    config_changed()
    return trunk


def trunk_delete(*, trunk: SipTrunk) -> None:
    trunk.delete()
    config_changed()


def did_add(*, trunk: SipTrunk, number: str) -> Did:
    normalised = normalise_e164(number)
    if Did.objects.filter(number=normalised).exists():
        raise ApplicationError(f"{normalised} is already in use.", extra={"field": "number"})
    try:
        with transaction.atomic():
            did = Did.objects.create(tenant=trunk.tenant, trunk=trunk, number=normalised)
    except IntegrityError as exc:
        raise ApplicationError(f"{normalised} is already in use.", extra={"field": "number"}) from exc
    config_changed()
    return did


def did_remove(*, did: Did) -> None:
    did.delete()
    config_changed()
