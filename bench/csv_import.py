"""Benchmark: extension CSV import on PostgreSQL, and directory matching latency.

    .venv/bin/python bench/csv_import.py [--rows 10000,100000] [--queries 2000]

Creates a throwaway database `bench_<test database>` on the test settings' PostgreSQL server,
migrates it, and drops it at the end. Each import size runs in a child process, so its peak
memory (max RSS, and the growth over the process's resting size) is its own. Prints:

* rows/s and seconds for "check + commit" in one transaction (what the API and the worker do),
  the page's two steps (preview, then commit), and an unchanged re-import;
* peak memory of the child;
* match() latency p50/p95/p99 over a 10,000-extension directory, cold (no token cache) and warm.

Goal (issue 6): 100,000 rows checked and committed in <= 10 s and <= 200 MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartalex.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/smartalex")

FIRST = [
    "Sarah",
    "Sara",
    "John",
    "Jon",
    "Michael",
    "Mike",
    "Anna",
    "Ann",
    "Peter",
    "Pieter",
    "Thandi",
    "Sipho",
    "Lerato",
    "Johan",
    "Priya",
    "Raj",
    "Mohammed",
    "Muhammad",
    "Fatima",
    "Chen",
    "Wei",
    "Maria",
    "Mariah",
    "Steven",
    "Stephen",
    "Kate",
    "Cate",
    "Olivia",
    "Liam",
    "Noah",
    "Emma",
    "Ava",
    "Lucas",
    "Mia",
    "Zanele",
    "Themba",
    "Nomsa",
    "Andile",
    "Bongani",
    "Ayanda",
    "Kagiso",
    "Lindiwe",
    "Naledi",
    "Tumelo",
    "Grace",
    "Daniel",
    "David",
    "Ruth",
]
LAST = [
    "Jones",
    "Smith",
    "Naidoo",
    "Botha",
    "Nkosi",
    "Dlamini",
    "Patel",
    "Khumalo",
    "Mokoena",
    "VanDerMerwe",
    "Pillay",
    "Williams",
    "Brown",
    "Taylor",
    "Nel",
    "Pretorius",
    "Mahlangu",
    "Sithole",
    "Zulu",
    "Ndlovu",
    "Chetty",
    "Govender",
    "Muller",
    "Fischer",
    "Garcia",
    "Lee",
    "Wang",
    "Kim",
    "Singh",
]
DEPARTMENTS = [
    "Sales",
    "Support",
    "Billing",
    "Accounts",
    "Reception",
    "Radiology",
    "Pharmacy",
    "Dispatch",
    "Legal",
    "HR",
    "IT",
    "Marketing",
    "Logistics",
    "Finance",
    "Admissions",
    "Records",
    "Maintenance",
    "Security",
    "Kitchen",
    "Housekeeping",
]


def generated_csv(rows: int, seed: int = 6) -> bytes:
    rng = random.Random(seed)
    lines = ["extension,display_name,owner,department,aliases\r\n"]
    for i in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        department = rng.choice(DEPARTMENTS)
        owner = f"{first} {last}"
        # Aliases must be unique per trunk: make them so, as a real directory's would be.
        aliases = f"{first.lower()} {last.lower()} {i}|desk {i}" if i % 3 else ""
        display = owner if i % 5 else f"{department} desk {i}"
        lines.append(f"{10000 + i},{display},{owner},{department},{aliases}\r\n")
    return "".join(lines).encode()


# --- child: one step in a fresh process, so its peak memory is its own ------------------------
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_import(step: str, rows: int) -> dict:
    import django

    django.setup()
    from django.db import transaction

    from extensions.models import Extension, ImportStatus
    from extensions.services import _lock_trunk, _run_import, import_job_commit, import_job_create
    from extensions.tasks import directory_import_run
    from smartalex.tenancy.models import Tenant
    from trunks.models import SipTrunk

    tenant = Tenant.objects.get(name="Bench")
    data = generated_csv(rows)
    resting = _rss_mb()  # Django loaded and the upload in memory, as in a web or worker process
    result: dict = {"step": step, "rows": rows, "file_mb": round(len(data) / 1e6, 1)}
    started = time.perf_counter()
    if step in ("one-shot", "unchanged"):
        # Decode, check every row and write, in one transaction: the API's and the worker's path.
        trunk = SipTrunk.objects.get(tenant=tenant, name=f"one-shot {rows}")
        with transaction.atomic():
            _lock_trunk(trunk)
            report = _run_import(
                trunk=trunk, text=data.decode("utf-8-sig"), mode="merge", dry_run=False, max_rows=rows
            )
        assert report.ok, report.errors[:3]
        if step == "one-shot":
            assert report.created == rows and Extension.objects.filter(trunk=trunk).count() == rows
        else:
            assert report.unchanged == rows
    else:
        # The page: upload (stored in the job row), preview in the worker, commit in the worker.
        trunk = SipTrunk.objects.get(tenant=tenant, name=f"page {rows}")
        job = import_job_create(trunk=trunk, user=None, data=data, filename="bench.csv")
        directory_import_run.apply(args=[job.pk]).get()
        job.refresh_from_db()
        assert job.status == ImportStatus.PREVIEWED, job.message
        result["preview_s"] = round(time.perf_counter() - started, 2)
        job = import_job_commit(job=job)
        directory_import_run.apply(args=[job.pk]).get()
        job.refresh_from_db()
        assert job.status == ImportStatus.COMMITTED, job.message
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["rows_per_s"] = round(rows / result["seconds"])
    result["peak_rss_mb"] = round(_rss_mb(), 1)
    result["growth_mb"] = round(_rss_mb() - resting, 1)
    return result


def child_matching(entries: int, queries: int) -> dict:
    import django

    django.setup()
    from extensions.selectors import directory_matcher
    from smartalex.tenancy.models import Tenant
    from trunks.models import SipTrunk

    tenant = Tenant.objects.get(name="Bench")
    trunk = SipTrunk.objects.get(tenant=tenant, name=f"one-shot {entries}")
    started = time.perf_counter()
    matcher = directory_matcher(tenant=tenant, trunk_id=trunk.pk, cached=False)
    build_s = time.perf_counter() - started
    assert len(matcher.entries) == entries

    rng = random.Random(7)
    typo = {"Sarah": "Sara", "John": "Jhon", "Stephen": "Steven", "Jones": "Jonse", "Naidoo": "Naido"}
    spoken = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    phrases = []
    for _ in range(queries):
        entry = rng.choice(matcher.entries)
        first, last = entry.owner.split()
        phrases.append(
            rng.choice(
                [
                    f"can I talk to {first} {last} please",
                    f"{typo.get(first, first)} {typo.get(last, last)}",
                    f"{first} in {entry.department}",
                    "extension " + " ".join(spoken[int(d)] for d in entry.number),
                    f"transfer me to {entry.department}",
                    "purple monkey dishwasher",
                ]
            )
        )

    def timings(clear_cache: bool) -> list[float]:
        samples = []
        for phrase in phrases:
            if clear_cache:
                matcher._token_cache.clear()
            started = time.perf_counter()
            matcher.match(phrase)
            samples.append((time.perf_counter() - started) * 1000)
        return sorted(samples)

    def percentiles(samples: list[float]) -> dict:
        pick = lambda q: round(samples[min(len(samples) - 1, int(q * len(samples)))], 2)  # noqa: E731
        return {
            "p50_ms": pick(0.50),
            "p95_ms": pick(0.95),
            "p99_ms": pick(0.99),
            "max_ms": round(samples[-1], 2),
        }

    result = {
        "entries": entries,
        "queries": queries,
        "build_s": round(build_s, 2),
        "vocabulary": len(matcher.vocabulary()),
        "cold": percentiles(timings(clear_cache=True)),
        "warm": percentiles(timings(clear_cache=False)),
    }
    # A long-running engine can move its loaded configuration out of the collector's sight;
    # the p99 above is mostly full collections walking the Django process's heap.
    gc.collect()
    gc.freeze()
    result["cold, after gc.freeze()"] = percentiles(timings(clear_cache=True))
    return result


# --- parent: the throwaway database and the report --------------------------------------------
def _admin_connection(url: str):
    import psycopg
    from dj_database_url import parse

    cfg = parse(url)
    return psycopg.connect(
        host=cfg["HOST"] or "127.0.0.1",
        port=cfg["PORT"] or 5432,
        user=cfg["USER"] or "postgres",
        password=cfg["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def _bench_url(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    name = "bench_" + ("test_" + parts.path.lstrip("/")).replace("test_test_", "test_")
    return urlunsplit(parts._replace(path="/" + name)), name


def run_child(args: list[str], env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, check=True, capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="10000,100000")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--child", choices=["import", "matching"])
    parser.add_argument("--n", type=int)
    parser.add_argument("--step", default="one-shot")
    args = parser.parse_args()

    if args.child == "import":
        print(json.dumps(child_import(args.step, args.n)))
        return
    if args.child == "matching":
        print(json.dumps(child_matching(args.n, args.queries)))
        return

    sizes = [int(n) for n in args.rows.split(",")]
    url, name = _bench_url(os.environ["DATABASE_URL"])
    env = {**os.environ, "DATABASE_URL": url}
    with _admin_connection(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    print(f"database {name} created")
    try:
        os.environ["DATABASE_URL"] = url
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from smartalex.tenancy.services import workspace_create
        from trunks.services import TrunkSettings, trunk_create

        tenant, _ = workspace_create(
            name="Bench", owner_email="bench@bench.test", owner_password="bench-pass-123"
        )
        for rows in sizes:
            for kind in ("one-shot", "page"):
                trunk_create(
                    tenant=tenant, values=TrunkSettings(name=f"{kind} {rows}", pbx_domain="pbx.bench.test")
                )
        from django.db import connections

        connections.close_all()

        print(f"\nCSV import on PostgreSQL ({os.cpu_count()} CPUs); each step in a fresh process")
        print(
            f"{'step':<44} {'rows':>7} {'file MB':>7} {'seconds':>8} {'rows/s':>7} "
            f"{'peak RSS MB':>11} {'growth MB':>9}"
        )
        labels = {
            "one-shot": "check + commit (empty trunk)",
            "unchanged": "same file again (all unchanged)",
            "page": "page: preview, then commit",
        }
        for rows in sizes:
            for step in ("one-shot", "unchanged", "page"):
                r = run_child(["--child", "import", "--step", step, "--n", str(rows)], env)
                label = labels[step] + (
                    f" ({r['preview_s']} + {round(r['seconds'] - r['preview_s'], 2)} s)"
                    if step == "page"
                    else ""
                )
                print(
                    f"{label:<44} {r['rows']:>7} {r['file_mb']:>7} {r['seconds']:>8} {r['rows_per_s']:>7} "
                    f"{r['peak_rss_mb']:>11} {r['growth_mb']:>9}"
                )
        if 10_000 in sizes:
            m = run_child(["--child", "matching", "--n", "10000", "--queries", str(args.queries)], env)
            print(
                f"\nMatching over {m['entries']} extensions ({m['vocabulary']} vocabulary phrases, "
                f"index built in {m['build_s']} s from PostgreSQL), {m['queries']} phrases:"
            )
            for label in ("cold", "warm", "cold, after gc.freeze()"):
                t = m[label]
                print(
                    f"  {label:24} p50 {t['p50_ms']} ms  p95 {t['p95_ms']} ms  p99 {t['p99_ms']} ms  max {t['max_ms']} ms"
                )
    finally:
        from django.db import connections

        connections.close_all()
        with _admin_connection(url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"\ndatabase {name} dropped")


if __name__ == "__main__":
    main()
