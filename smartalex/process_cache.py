"""One cache client per process, for code that runs in `asyncio.to_thread` workers.

Django keeps cache clients per context (asgiref's Local on contextvars), and `to_thread` runs
every call in a copy of the caller's context, so each call there built a new client with its
own Redis connection pool, closed only when the garbage collector got round to it. The engine
reads the configuration version twice a second: with its gc frozen and tuned for throughput,
that was two leaked connections a second. A client made once per process is shared safely
(redis-py's pool and the file cache are thread-safe).
"""

from __future__ import annotations

import functools

from django.core.cache import BaseCache, caches


@functools.cache
def process_cache(alias: str = "default") -> BaseCache:
    return caches.create_connection(alias)
