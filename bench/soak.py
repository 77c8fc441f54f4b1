"""Soak: a sipserver under steady REGISTER load for a long time, watching for failures and for
growth in memory and open files. Everything runs on PRIVATE services started here (a PostgreSQL
cluster and a redis-server on free ports), never on the machine's shared ones.

    python bench/soak.py                     # 600 s at half the measured maximum rate
    python bench/soak.py --duration 150 --rate 400   # skip the ramp, fixed rate

Steps: seed --users trunks; ramp sipp (REGISTER → 401 → REGISTER → 200) over --ramp rates to find
the highest rate with no failed registration; then run at half of it for --duration seconds,
sampling the sipserver's VmRSS and open file descriptors (/proc/PID) every 10 s.
Registrations only: calls with RTP are not part of this soak yet (see docs/operations.md).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telephony.tests.hardening.child_settings")

from telephony.tests.hardening.support import Stack, free_port, write_users  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "telephony" / "tests" / "data" / "sipp" / "reg_auth.xml"


def sipp(port: int, users: Path, *, rate: int, count: int, timeout: float) -> tuple[int, int, int]:
    """Runs sipp; returns (successful, failed, retransmissions)."""
    stats = users.parent / f"sipp-{rate}-{count}.csv"
    run = subprocess.run(
        ["sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIO), "-inf", str(users), "-r", str(rate),
         "-m", str(count), "-l", str(max(rate * 2, 100)), "-i", "127.0.0.1", "-p", "0", "-nostdin",
         "-timeout", str(int(timeout)), "-recv_timeout", "10000", "-trace_stat", "-stf", str(stats),
         "-fd", str(max(int(timeout), 1))],
        capture_output=True, text=True, timeout=timeout + 60, cwd=users.parent,
    )  # fmt: skip
    ok = _counter(run.stdout, "Successful call")
    failed = _counter(run.stdout, "Failed call")
    retrans = _retransmissions(stats)
    return ok, failed, retrans


def _counter(screen: str, name: str) -> int:
    found = re.findall(rf"{name}\s+\|\s+\d+\s+\|\s+(\d+)", screen)
    return int(found[-1]) if found else -1


def _retransmissions(stats: Path) -> int:
    if not stats.exists():
        return -1
    lines = stats.read_text().splitlines()
    header = lines[0].split(";")
    if "Retransmissions(C)" not in header:
        return -1
    return int(lines[-1].split(";")[header.index("Retransmissions(C)")])


def sample(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=600)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--ramp", default="250,500,1000,1500,2000")
    parser.add_argument("--step-seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=0, help="skip the ramp and use this rate")
    args = parser.parse_args()

    stack = Stack.create()
    port = free_port()
    server = None
    try:
        stack.seed(args.users, user_prefix="soak", pass_prefix="soakpass-")
        users = write_users(
            stack.base / "users.csv",
            [(f"soak{i:04d}", f"soakpass-{i:04d}") for i in range(1, args.users + 1)],
        )
        from telephony.tests.hardening.support import Sipserver

        server = Sipserver(stack.env(), port, stack.base / "sipserver.log").start()
        maximum = args.rate * 2
        if not args.rate:
            print(f"{'rate/s':>7} {'ok':>7} {'failed':>7} {'retrans':>8}")
            for rate in (int(r) for r in args.ramp.split(",")):
                ok, failed, retrans = sipp(
                    port, users, rate=rate, count=rate * args.step_seconds, timeout=args.step_seconds * 4
                )
                print(f"{rate:>7} {ok:>7} {failed:>7} {retrans:>8}", flush=True)
                if failed != 0 or retrans != 0 or ok != rate * args.step_seconds:
                    break
                maximum = rate
        rate = max(maximum // 2, 1)
        print(
            f"maximum clean REGISTER rate: {maximum}/s; soaking at {rate}/s for {args.duration} s", flush=True
        )

        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()

        def sampler() -> None:
            started = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - started, *sample(server.process.pid)))
                stop.wait(10)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        ok, failed, retrans = sipp(
            port, users, rate=rate, count=rate * args.duration, timeout=args.duration + 60
        )
        stop.set()
        thread.join()
        samples.append((samples[-1][0] + 1, *sample(server.process.pid)))
        print(f"{'t/s':>6} {'VmRSS/MiB':>10} {'fds':>5}")
        for t, rss, fds in samples:
            print(f"{t:>6.0f} {rss / 1024:>10.1f} {fds:>5}")
        first, last = samples[1] if len(samples) > 2 else samples[0], samples[-1]
        print(f"registrations ok={ok} failed={failed} retransmissions={retrans}")
        print(f"VmRSS {first[1] / 1024:.1f} → {last[1] / 1024:.1f} MiB (max {max(s[1] for s in samples) / 1024:.1f}); "
              f"fds {first[2]} → {last[2]} (max {max(s[2] for s in samples)})")  # fmt: skip
        print(f"bindings in Redis: {stack.binding_count()}")
        return 0 if failed == 0 and ok == rate * args.duration else 1
    finally:
        if server is not None:
            server.stop()
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
