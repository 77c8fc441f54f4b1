"""Reads for the extension directory, always scoped by workspace (another's ids are a 404)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Length
from django.shortcuts import get_object_or_404

from smartalex.tenancy.models import Tenant
from trunks.config_version import config_version
from trunks.models import SipTrunk
from trunks.selectors import trunk_get, trunk_list

from .importing import ExistingExtension
from .matching import DirectoryEntry, DirectoryMatcher, MatchResult
from .models import DirectoryImport, Extension
from .rules import join_aliases


def extension_list(*, tenant: Tenant, trunk: SipTrunk, search: str = "") -> QuerySet[Extension]:
    """A trunk's extensions in dialling order (101 before 1000), optionally filtered."""
    queryset = Extension.objects.filter(tenant=tenant, trunk=trunk)
    search = search.strip()
    if search:
        queryset = queryset.filter(
            Q(number__icontains=search)
            | Q(display_name__icontains=search)
            | Q(owner__icontains=search)
            | Q(department__icontains=search)
            | Q(aliases__icontains=search)
        )
    return queryset.order_by(Length("number"), "number")


def extension_get(*, tenant: Tenant, trunk: SipTrunk, extension_id: int) -> Extension:
    return get_object_or_404(Extension.objects.filter(tenant=tenant, trunk=trunk), pk=extension_id)


def trunks_with_extension_counts(*, tenant: Tenant) -> QuerySet[SipTrunk]:
    return trunk_list(tenant=tenant).annotate(extension_count=Count("extensions"))


def directory_counts(*, tenant: Tenant, trunk: SipTrunk) -> dict[str, int]:
    extensions = Extension.objects.filter(tenant=tenant, trunk=trunk)
    return {
        "extensions": extensions.count(),
        "with_aliases": extensions.exclude(aliases=[]).count(),
        "departments": extensions.exclude(department="").values("department").distinct().count(),
    }


def directory_snapshot(*, trunk: SipTrunk) -> dict[str, ExistingExtension]:
    """The directory as the import planner compares it: number -> current values."""
    rows = Extension.objects.filter(trunk=trunk).values_list(
        "number", "id", "display_name", "owner", "department", "aliases"
    )
    return {
        number: ExistingExtension(pk, display_name, owner, department, tuple(aliases))
        for number, pk, display_name, owner, department, aliases in rows.iterator(chunk_size=5000)
    }


def directory_fingerprint(*, trunk: SipTrunk) -> str:
    """Changes whenever an extension of the trunk is added, edited or removed."""
    summary = Extension.objects.filter(trunk=trunk).aggregate(
        count=Count("id"), last_id=Max("id"), last_change=Max("updated_at")
    )
    last_change = summary["last_change"].isoformat() if summary["last_change"] else ""
    return f"{summary['count']}:{summary['last_id'] or 0}:{last_change}"


def directory_export_rows(*, tenant: Tenant, trunk: SipTrunk) -> Iterator[tuple[str, str, str, str, str]]:
    """The CSV rows of the trunk's directory, streamed from the database."""
    rows = extension_list(tenant=tenant, trunk=trunk).values_list(
        "number", "display_name", "owner", "department", "aliases"
    )
    for number, display_name, owner, department, aliases in rows.iterator(chunk_size=2000):
        yield number, display_name, owner, department, join_aliases(aliases)


def import_job_get(*, tenant: Tenant, trunk: SipTrunk, token: uuid.UUID) -> DirectoryImport:
    return get_object_or_404(DirectoryImport.objects.filter(tenant=tenant, trunk=trunk), token=token)


# --- matching --------------------------------------------------------------------------------
# The call engine asks on every caller turn. A matcher is built once per (workspace, trunk) and
# rebuilt when the configuration version (bumped after every directory write) moves on, so a
# warm lookup costs one cache read and no query.
_matchers: dict[tuple[int, int], tuple[int, DirectoryMatcher]] = {}
_matchers_lock = threading.Lock()


def directory_entries(*, trunk: SipTrunk) -> Iterator[DirectoryEntry]:
    rows = Extension.objects.filter(trunk=trunk).values_list(
        "id", "number", "display_name", "owner", "department", "aliases"
    )
    for pk, number, display_name, owner, department, aliases in rows.iterator(chunk_size=5000):
        yield DirectoryEntry(number, display_name, owner, department, tuple(aliases), pk)


def directory_matcher(*, tenant: Tenant, trunk_id: int, cached: bool = True) -> DirectoryMatcher:
    """`cached=False` reads the directory now (the "Try it" box must reflect an edit at once)."""
    key = (tenant.pk, int(trunk_id))
    version = config_version()
    if cached:
        with _matchers_lock:
            known = _matchers.get(key)
        if known is not None and known[0] == version:
            return known[1]
    trunk = trunk_get(tenant=tenant, trunk_id=trunk_id)  # another workspace's trunk: 404
    matcher = DirectoryMatcher(directory_entries(trunk=trunk))
    if cached:
        with _matchers_lock:
            _matchers[key] = (version, matcher)
    return matcher


def extension_match(*, tenant: Tenant, trunk_id: int, phrase: str, cached: bool = True) -> MatchResult:
    """Ranked extensions for what a caller said (used by the engine and the "Try it" box)."""
    return directory_matcher(tenant=tenant, trunk_id=trunk_id, cached=cached).match(phrase)


def directory_vocabulary(*, tenant: Tenant, trunk_id: int) -> list[str]:
    """The names and phrases speech recognition should listen for on this trunk's calls."""
    return directory_matcher(tenant=tenant, trunk_id=trunk_id).vocabulary()
