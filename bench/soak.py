"""Soak: a sipserver under steady REGISTER load plus calls with RTP for a long time, watching
for failures and for growth in memory and open files. Everything runs on PRIVATE services
started here (a PostgreSQL cluster and a redis-server on free ports), never on the machine's
shared ones, and on 127.0.0.1 only.

    python bench/soak.py                     # 600 s at half the measured maximum rate, 10 calls
    python bench/soak.py --duration 150 --rate 400 --calls 20   # skip the ramp, fixed rate

Steps: seed --users trunks and one call trunk (a DID, an agent, extensions); ramp sipp
(REGISTER → 401 → REGISTER → 200) over --ramp rates to find the highest rate with no failed
registration; then, for --duration seconds, run sipp at half of it while a PBX
(`telephony.calls.pbx_peer.PbxPeer`, registered on the call trunk) keeps --calls calls up at
once, each --call-seconds long with G.711 RTP both ways (50 packets/s each way), then BYE and
the next. The sipserver answers with its real agent (the receptionist). Its VmRSS and open file
descriptors (/proc/PID) are sampled every 10 s, after one warm-up call has loaded the agent.
The last line is `SOAK-RESULT {json}` for scripts (the quick version in the suite reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
SETTLE_SECONDS = 5
CALL_USER, CALL_PASSWORD, CALL_DID = "soakcalls", "soakcalls-password-0001", "+27115550100"
# The call trunk, its agent and directory, made with the portal's own services.
SEED_CALLS = """
from smartalex.agents.models import Agent
from smartalex.tenancy.models import Tenant
from extensions.rules import ExtensionValues
from extensions.services import extension_create
from trunks.services import TrunkSettings, did_add, trunk_create
tenant = Tenant.objects.create(name="Soak calls", max_concurrent_calls={limit})
trunk, _ = trunk_create(tenant=tenant, values=TrunkSettings(name="Soak PBX", pbx_domain="pbx.soak.test",
    max_concurrent_calls={limit}), username="{user}", password="{password}")
did_add(trunk=trunk, number="{did}")
Agent.objects.create(tenant=tenant, name="Reception", first_message="Hello, Acme Dental.",
    fallback_extension="100", trunk=trunk)
for number, name in (("100", "Reception"), ("101", "Sales"), ("102", "Support")):
    extension_create(trunk=trunk, values=ExtensionValues(number=number, display_name=name))
"""


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


class CallLoad:
    """`concurrency` callers on one registered PbxPeer, each calling the DID again and again:
    INVITE → 200 → RTP both ways for `seconds` → BYE. Runs on its own loop in a thread."""

    def __init__(self, port: int, *, concurrency: int, seconds: float) -> None:
        self.server = ("127.0.0.1", port)
        self.concurrency, self.seconds = concurrency, seconds
        self.attempted = self.answered = self.failed = self.ended_by_engine = 0
        self.rtp_sent = self.rtp_received = 0
        self.failures: dict[str, int] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._runner: asyncio.Future | None = None
        self.pbx = None

    def _run(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> CallLoad:
        """Registers and places one warm-up call (the agent's models load), then starts the load."""
        self._thread.start()
        self._run(self._prepare())
        self._runner = asyncio.run_coroutine_threadsafe(self._load(), self.loop)
        return self

    def stop(self) -> dict:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._runner.result(self.seconds + 60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        return {
            "attempted": self.attempted, "answered": self.answered, "failed": self.failed,
            "ended_by_engine": self.ended_by_engine, "rtp_sent": self.rtp_sent,
            "rtp_received": self.rtp_received, "failures": self.failures,
        }  # fmt: skip

    async def _prepare(self) -> None:
        from telephony.calls.pbx_peer import PbxPeer

        self._stop = asyncio.Event()
        self.pbx = await PbxPeer(self.server).start()
        status = await self.pbx.register(CALL_USER, CALL_PASSWORD)
        assert status == 200, f"the call trunk did not register: {status}"
        warm = await self.pbx.call(CALL_DID, answer_timeout=30)
        assert warm.response.status == 200, f"warm-up call: {warm.response.status}"
        await asyncio.sleep(2)
        if not warm.ended.is_set():
            await self.pbx.bye(warm)
        self.pbx.calls.clear()

    async def _load(self) -> None:
        async def keep_registered() -> None:
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(self._stop.wait(), 240)
                except TimeoutError:
                    await self.pbx.register(CALL_USER, CALL_PASSWORD)

        callers = [asyncio.create_task(self._caller(i)) for i in range(self.concurrency)]
        keeper = asyncio.create_task(keep_registered())
        await asyncio.gather(*callers)
        keeper.cancel()
        self.pbx.close()

    async def _caller(self, index: int) -> None:
        await asyncio.sleep(index * self.seconds / max(self.concurrency, 1))  # spread the set-ups
        while not self._stop.is_set():
            self.attempted += 1
            try:
                call = await self.pbx.call(CALL_DID, answer_timeout=15)
            except Exception as error:  # noqa: BLE001 — counted, and the soak goes on
                self._failed(type(error).__name__)
                continue
            if call.response.status != 200:
                self._failed(str(call.response.status))
                await asyncio.sleep(1)
                continue
            self.answered += 1
            try:
                await asyncio.wait_for(call.ended.wait(), self.seconds)
                self.ended_by_engine += 1
            except TimeoutError:
                try:
                    if (await self.pbx.bye(call)).status != 200:
                        self._failed("BYE not 200")
                except TimeoutError:
                    self._failed("BYE unanswered")
            stats = call.media.stats if call.media is not None else None
            if stats is not None:
                self.rtp_sent += stats.packets_sent
                self.rtp_received += stats.packets_received
                call.media.close()
            self.pbx.calls.pop(call.call_id, None)

    def _failed(self, why: str) -> None:
        self.failed += 1
        self.failures[why] = self.failures.get(why, 0) + 1


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/PID/stat), for figures that mean something under load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_sockets(pid: int) -> int:
    """The process's UDP sockets (SIP, and RTP + RTCP per call): back to the idle count once the
    calls are over, or media sockets leak."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    udp = set()
    for table in ("udp", "udp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                udp.add(line.split()[9])
    return len(inodes & udp)


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
    parser.add_argument("--calls", type=int, default=10, help="calls up at once (0: registrations only)")
    parser.add_argument("--call-seconds", type=float, default=15.0)
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

        if args.calls:
            limit = args.calls + 5
            code = SEED_CALLS.format(limit=limit, user=CALL_USER, password=CALL_PASSWORD, did=CALL_DID)
            stack.manage("shell", "-c", code)
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

        udp_idle = udp_sockets(server.process.pid)
        load = (
            CallLoad(port, concurrency=args.calls, seconds=args.call_seconds).start() if args.calls else None
        )
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()
        cpu_before = _cpu_seconds(server.process.pid)

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
        calls = load.stop() if load is not None else {}
        stop.set()
        thread.join()
        time.sleep(SETTLE_SECONDS)  # the last calls' media and transactions end; then "end" is the rest state
        samples.append((samples[-1][0] + SETTLE_SECONDS, *sample(server.process.pid)))
        cpu = _cpu_seconds(server.process.pid) - cpu_before
        udp_end = udp_sockets(server.process.pid)
        print(f"{'t/s':>6} {'VmRSS/MiB':>10} {'fds':>5}")
        for t, rss, fds in samples:
            print(f"{t:>6.0f} {rss / 1024:>10.1f} {fds:>5}")
        start, middle, end = samples[0], samples[len(samples) // 2], samples[-1]
        print(f"registrations ok={ok} failed={failed} retransmissions={retrans}")
        if calls:
            print(
                f"calls attempted={calls['attempted']} answered={calls['answered']} failed={calls['failed']} "
                f"(ended by the engine first: {calls['ended_by_engine']}) {calls['failures'] or ''}"
            )
            print(f"RTP packets sent={calls['rtp_sent']} received={calls['rtp_received']} (by the PBX)")
        for name, (t, rss, fds) in (("start", start), ("middle", middle), ("end", end)):
            print(f"{name:>6} t={t:>4.0f} s  VmRSS {rss / 1024:.1f} MiB  fds {fds}")
        print(f"VmRSS max {max(s[1] for s in samples) / 1024:.1f} MiB; fds max {max(s[2] for s in samples)}; "
              f"sipserver CPU {cpu:.1f} s in {args.duration} s")  # fmt: skip
        print(f"UDP sockets idle={udp_idle} end={udp_end} (SIP, plus RTP and RTCP per live call)")
        print(f"bindings in Redis: {stack.binding_count()}")
        result = {
            "rate": rate, "duration": args.duration, "registrations_ok": ok, "registrations_failed": failed,
            "retransmissions": retrans, "calls": calls, "cpu_seconds": round(cpu, 1),
            "rss_kib": [start[1], middle[1], end[1]], "fds": [start[2], middle[2], end[2]],
            "udp_sockets": [udp_idle, udp_end],
        }  # fmt: skip
        print("SOAK-RESULT " + json.dumps(result), flush=True)
        calls_ok = not calls or (calls["failed"] == 0 and calls["answered"] > 0 and udp_end == udp_idle)
        return 0 if failed == 0 and ok == rate * args.duration and calls_ok else 1
    finally:
        if server is not None:
            server.stop()
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
