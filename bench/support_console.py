"""Renders the support console over N trunks and prints how long it takes and how many queries.

Runs in its own throwaway PostgreSQL database (test settings, suffix bench_support), so it
touches nobody's data:
    .venv/bin/python bench/support_console.py --trunks 10000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartalex.settings.test")
os.environ.setdefault("TEST_DB_SUFFIX", "bench_support")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402

from smartalex.tenancy.models import User  # noqa: E402
from smartalex.tenancy.services import workspace_create  # noqa: E402
from trunks.models import Did, SipTrunk, TrunkEvent, TrunkStatus  # noqa: E402


def populate(count: int) -> None:
    from django.utils import timezone

    tenants = [
        workspace_create(
            name=f"Bench {w}", owner_email=f"owner{w}@bench.test", owner_password="bench-pass-42"
        )[0]
        for w in range(10)
    ]
    trunks = SipTrunk.objects.bulk_create(
        SipTrunk(
            tenant=tenants[i % 10],
            name=f"Trunk {i:05d}",
            pbx_domain=f"pbx{i}.bench.test",
            auth_username=f"b{i:06d}",
        )
        for i in range(count)
    )
    now = timezone.now()
    TrunkStatus.objects.bulk_create(
        TrunkStatus(
            trunk=t,
            tenant_id=t.tenant_id,
            state=("registered", "not_registered", "unreachable")[i % 3],
            source=f"198.51.{i // 250 % 256}.{i % 250}:5060",
            user_agent=("3CXPhoneSystem 20", "FPBX-16", "Yeastar P550")[i % 3],
        )
        for i, t in enumerate(trunks)
    )
    Did.objects.bulk_create(
        Did(tenant_id=t.tenant_id, trunk=t, number=f"+2721{i:07d}") for i, t in enumerate(trunks)
    )
    TrunkEvent.objects.bulk_create(
        TrunkEvent(tenant_id=t.tenant_id, trunk=t, kind=kind, at=now, detail={"reason": "wrong_password"})
        for t in trunks[:500]
        for kind in ("registered", "expired", "auth_failed", "registered")
    )


def measure(client: Client, params: dict, rounds: int) -> tuple[float, float, int]:
    times, queries = [], 0
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get("/support/", params)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        queries = len(ctx)
    return statistics.median(times), max(times), queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trunks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        started = time.perf_counter()
        populate(args.trunks)
        print(f"{args.trunks} trunks created in {time.perf_counter() - started:.1f} s")
        user = User.objects.create_user(email="bench@support.test", password="bench-pass-42", is_support=True)
        client = Client()
        client.force_login(user)
        for label, params in [
            ("first page", {}),
            ("page 100", {"page": "100"}),
            ("filter not registered", {"filter": "not_registered"}),
            ("filter flapping", {"filter": "flapping"}),
            ("filter failing auth", {"filter": "failing_auth"}),
            ("search DID", {"q": "+27210004242"}),
            ("search User-Agent", {"q": "yeastar"}),
        ]:
            median, worst, queries = measure(client, params, args.rounds)
            print(f"{label:24s} median {median:7.1f} ms  worst {worst:7.1f} ms  {queries} queries")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
