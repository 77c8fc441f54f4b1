"""Writes for workspaces, memberships and API keys."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from smartalex.errors import ApplicationError

from .models import ApiKey, Membership, Role, Tenant, User

API_KEY_PREFIX = "sak"


@transaction.atomic
def workspace_create(*, name: str, owner_email: str, owner_password: str) -> tuple[Tenant, User]:
    """Creates a workspace and its Owner (a new user, or an existing one who joins as Owner)."""
    name = name.strip()
    if not name:
        raise ApplicationError("A workspace needs a name.", extra={"field": "name"})
    if Tenant.objects.filter(name__iexact=name).exists():
        raise ApplicationError("A workspace with this name already exists.", extra={"field": "name"})
    email = owner_email.strip().lower()
    user = User.objects.filter(email=email).first()
    if user is None:
        try:
            validate_password(owner_password)
        except ValidationError as exc:
            raise ApplicationError(" ".join(exc.messages), extra={"field": "password"}) from exc
        user = User.objects.create_user(email=email, password=owner_password)
    elif not user.check_password(owner_password):
        raise ApplicationError("That email is already registered; sign in to add a workspace.")
    try:
        tenant = Tenant.objects.create(name=name)
    except IntegrityError as exc:  # a concurrent sign-up took the name
        raise ApplicationError("A workspace with this name already exists.", extra={"field": "name"}) from exc
    Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)
    return tenant, user


def membership_add(*, tenant: Tenant, user: User, role: Role) -> Membership:
    membership, _ = Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": role})
    return membership


def _hash_secret(secret: str) -> str:
    # API keys carry 256 bits of randomness, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, tenant: Tenant, name: str, role: Role = Role.ADMIN) -> tuple[ApiKey, str]:
    """Returns the key row and the full key, which is never stored and never shown again."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        tenant=tenant, name=name, prefix=prefix, secret_hash=_hash_secret(secret), role=role
    )
    return key, f"{API_KEY_PREFIX}_{prefix}_{secret}"


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    parts = raw_key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    _, prefix, secret = parts
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not secrets.compare_digest(key.secret_hash, _hash_secret(secret)):
        return None
    now = timezone.now()
    # Touch at most once a minute: a write per request would serialise the API on one row.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_revoke(*, tenant: Tenant, key_id: int) -> None:
    ApiKey.objects.filter(tenant=tenant, pk=key_id).update(revoked_at=timezone.now())
