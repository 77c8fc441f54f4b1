"""A counter every engine polls, so configuration changes reach all of them within 2 s.

Bumped after the transaction commits (an engine must never reload before the rows exist).
Kept in the shared cache: Redis in production, the file cache in the embedded default.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction

from smartalex.process_cache import process_cache

CONFIG_VERSION_KEY = "telephony:config-version"


def _bump() -> None:
    if not cache.add(CONFIG_VERSION_KEY, 1, timeout=None):
        try:
            cache.incr(CONFIG_VERSION_KEY)
        except ValueError:  # expired or evicted between add and incr
            cache.set(CONFIG_VERSION_KEY, 1, timeout=None)


def config_changed() -> None:
    transaction.on_commit(_bump)


def config_version() -> int:
    # Engines poll this from worker threads: see smartalex/process_cache.py.
    return int(process_cache().get(CONFIG_VERSION_KEY) or 0)
