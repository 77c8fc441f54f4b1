"""Call benchmarks against a real engine process on 127.0.0.1: setups, concurrency, DTMF → REFER.

The engine runs in its own process (uvloop, like `sipserver`) with an in-memory configuration:
one IP-whitelist trunk for 127.0.0.1 with a DID, an agent and extensions 101/102, limits at
1000. The load generator is another process built on `telephony.calls.pbx_peer` (our SIP core).

    setup       INVITE → 200 → ACK → the agent's first message (first loud RTP frame) → BYE,
                with --window calls in flight: setups/s, and first-message latency p50/p99
    concurrent  --calls calls held --seconds with G.711 RTP both ways: |interval - 20 ms| p50/p99
                between consecutive packets of a call as the engine hands them to its socket
                (pacing jitter), and the same at the generator's sockets (arrival: adds the
                generator's own loop delay, so an upper bound)
    refer       key 1-0-2 (RFC 4733) and time from the last digit's end packet to our REFER

    .venv/bin/python bench/calls_engine.py                  # all three, default sizes
    .venv/bin/python bench/calls_engine.py concurrent --calls 500 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOST = "127.0.0.1"  # never anything else: this benchmark must not leave the machine
DID = "+27115550100"
FIRST_MESSAGE = "Hello, thanks for calling Acme Dental."


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the engine process ------------------------------------------------------------------------


def engine_process(pipe, agent_mode: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve(pipe, agent_mode))


async def _serve(pipe, agent_mode: str) -> None:
    from telephony.calls import CallSettings
    from telephony.config import ConfigWatcher, build_config
    from telephony.engine import Engine, EngineSettings
    from telephony.event_sink import EventSink
    from telephony.location import SqliteLocationStore
    from telephony.receptionist.matching import DirectoryEntry, SimpleDirectoryMatcher
    from telephony.receptionist.tts import EspeakSynthesizer

    agent = dict(
        id=1, name="Reception", first_message=FIRST_MESSAGE, system_prompt="", voice="en-us", language="en-US",
        max_call_duration=300, silence_timeout=30, fallback_extension="100",
    )  # fmt: skip
    config = build_config(
        [
            dict(id=1, tenant_id=1, name="Bench PBX", pbx_domain="pbx.bench.test", allowed_ips=[HOST],
                 max_concurrent_calls=1000, agent=agent, dids=[DID])
        ],
        version=1,
    )  # fmt: skip
    directory = SimpleDirectoryMatcher(
        [DirectoryEntry("101", "Sales", "Sarah Jones"), DirectoryEntry("102", "Support", "John Smith")]
    )
    calls = CallSettings(
        agent_mode=agent_mode,
        # Below Linux's ephemeral range (32768+), so the generator's own sockets never hold an RTP port.
        rtp_port_min=20000,
        rtp_port_max=30000,
        directory=lambda trunk: directory,
        tenant_limits=lambda: {},
    )
    tmp = Path(tempfile.mkdtemp(prefix="calls-bench-"))
    engine = Engine(
        EngineSettings(realm="sip.bench.test", host=HOST, port=0, tls_port=None, var_dir=tmp, calls=calls),
        store=SqliteLocationStore(tmp / "loc.sqlite3"),
        watcher=ConfigWatcher(load=lambda: config, read_version=lambda: 1, poll_interval=5),
        sink=EventSink(send=lambda batch: None, interval=1.0),
    )
    tts = EspeakSynthesizer(cache_dir=None)
    await tts.prerender([FIRST_MESSAGE, "Transferring you to John Smith."])
    engine.calls.agents._tts = tts
    addresses = await engine.start()
    loop = asyncio.get_running_loop()
    sent_at: list[list[float]] = []

    def record_pacing(call) -> None:  # when each answered call's packets reach the socket
        times: list[float] = []
        sent_at.append(times)
        call.media._on_packet_sent = lambda data, times=times: times.append(loop.time())

    engine.calls.on_answered.append(record_pacing)
    pipe.send(addresses["udp"])
    started_cpu = resource.getrusage(resource.RUSAGE_SELF)
    while True:
        if pipe.poll():
            command = pipe.recv()
            if command == "stop":
                break
            if command == "pacing-reset":
                for times in sent_at:
                    times.clear()
            if command == "pacing":
                jitter = [
                    abs((b - a) - 0.02) * 1000
                    for times in sent_at
                    for a, b in zip(times, times[1:], strict=False)
                ]
                pipe.send((percentile(jitter, 0.5), percentile(jitter, 0.99), len(jitter)))
                sent_at.clear()
            if command == "cpu":
                now = resource.getrusage(resource.RUSAGE_SELF)
                pipe.send(now.ru_utime + now.ru_stime - started_cpu.ru_utime - started_cpu.ru_stime)
        await asyncio.sleep(0.05)
    await engine.stop()


# --- the generator -----------------------------------------------------------------------------


class Listener(asyncio.DatagramProtocol):
    """A cheap media peer: timestamps what the engine sends, never decodes it."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.loud_at: float | None = None
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.perf_counter()
        self.arrivals.append(now)
        # PCMU silence is 0xFF/0x7F; speech has bytes far from them.
        if self.loud_at is None and len(data) > 12 and any(b < 0x60 or 0x80 <= b < 0xE0 for b in data[12:40]):
            self.loud_at = now
        self.remote = addr


async def bench_setup(engine_addr, total: int, window: int) -> dict:
    from telephony.calls.pbx_peer import PbxPeer

    pbx = await PbxPeer(engine_addr).start()
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failures = 0
    errors: list[str] = []
    semaphore = asyncio.Semaphore(window)

    async def one() -> None:
        nonlocal failures
        async with semaphore:
            listener = Listener()
            transport, _ = await loop.create_datagram_endpoint(lambda: listener, local_addr=(HOST, 0))
            started = time.perf_counter()
            try:
                call = await pbx.call(
                    DID, codecs=("PCMU",), media_port=transport.get_extra_info("sockname")[1]
                )
                if call.response.status != 200:
                    failures += 1
                    return
                deadline = started + 5
                while listener.loud_at is None and time.perf_counter() < deadline:
                    await asyncio.sleep(0.005)
                if listener.loud_at is None:
                    failures += 1
                else:
                    latencies.append(listener.loud_at - started)
                await pbx.bye(call)
            except Exception as exc:  # noqa: BLE001 — counted, the run goes on
                failures += 1
                errors.append(repr(exc))
            finally:
                transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    elapsed = time.perf_counter() - started
    pbx.close()
    if errors:
        print(f"first error of {len(errors)}: {errors[0]}")
    return {"calls": total, "failures": failures, "elapsed": elapsed, "latencies": latencies}


def _setup_worker(arguments) -> dict:
    engine_addr, total, window = arguments
    return asyncio.run(bench_setup(engine_addr, total, window))


def bench_setups(engine_addr, total: int, window: int, generators: int) -> dict:
    """Several generator processes, so the generator (Python too) is not what limits the rate."""
    with multiprocessing.Pool(generators) as pool:
        parts = pool.map(
            _setup_worker, [(engine_addr, total // generators, window // generators)] * generators
        )
    calls = sum(p["calls"] for p in parts)
    failures = sum(p["failures"] for p in parts)
    latencies = [x for p in parts for x in p["latencies"]]
    elapsed = max(p["elapsed"] for p in parts)
    return {
        "calls": calls,
        "failures": failures,
        "setups_per_s": (calls - failures) / elapsed,
        "first_message_p50_ms": 1000 * percentile(latencies, 0.5),
        "first_message_p99_ms": 1000 * percentile(latencies, 0.99),
    }


async def bench_concurrent(engine_addr, calls: int, seconds: float, pipe=None) -> dict:
    from telephony.calls.pbx_peer import PbxPeer
    from telephony.media.rtp import build_simple_rtp

    pbx = await PbxPeer(engine_addr).start()
    loop = asyncio.get_running_loop()
    legs = []
    for _ in range(calls):
        listener = Listener()
        transport, _ = await loop.create_datagram_endpoint(
            lambda listener=listener: listener, local_addr=(HOST, 0)
        )
        call = await pbx.call(DID, codecs=("PCMU",), media_port=transport.get_extra_info("sockname")[1])
        if call.response.status == 200:
            from telephony.sip.sdp import parse_sdp

            body = parse_sdp(call.response.body)
            legs.append((call, listener, transport, body.media[0].port))
    payload = bytes([0xFF]) * 160
    sequence = 0

    async def send_rtp() -> None:  # one timer for every call: 50 packets/s each
        nonlocal sequence
        start = loop.time()
        tick = 0
        while True:
            tick += 1
            sequence = (sequence + 1) & 0xFFFF
            for index, (_, _, transport, port) in enumerate(legs):
                transport.sendto(
                    build_simple_rtp(0, sequence, (tick * 160) & 0xFFFFFFFF, 1000 + index, payload, False),
                    (HOST, port),
                )
            await asyncio.sleep(max(0, start + tick * 0.02 - loop.time()))

    sender = asyncio.create_task(send_rtp())
    await asyncio.sleep(1.0)  # warm-up, not measured
    for _, listener, _, _ in legs:
        listener.arrivals.clear()
    pipe.send("pacing-reset")
    await asyncio.sleep(seconds)
    pipe.send("pacing")
    engine_p50, engine_p99, intervals = pipe.recv()
    sender.cancel()
    jitter = []
    received = 0
    for _, listener, _, _ in legs:
        arrivals = listener.arrivals
        received += len(arrivals)
        jitter += [abs((b - a) - 0.02) * 1000 for a, b in zip(arrivals, arrivals[1:], strict=False)]
    for call, _, transport, _ in legs:
        await pbx.bye(call)
        transport.close()
    pbx.close()
    return {
        "calls_up": len(legs),
        "engine_pacing_jitter_p50_ms": engine_p50,
        "engine_pacing_jitter_p99_ms": engine_p99,
        "engine_intervals": intervals,
        "packets_per_s_at_generator": received / seconds,
        "arrival_jitter_p50_ms": percentile(jitter, 0.5),
        "arrival_jitter_p99_ms": percentile(jitter, 0.99),
    }


async def bench_refer(engine_addr, total: int) -> dict:
    from telephony.calls.pbx_peer import PbxPeer

    pbx = await PbxPeer(engine_addr).start()
    delays: list[float] = []
    for _ in range(total):
        call = await pbx.call(DID, codecs=("PCMU",))
        await asyncio.sleep(0.2)
        pbx.events.pop("REFER", None)
        ends: list[float] = []

        def sent(packet: bytes, ends: list[float] = ends) -> None:
            # The first RFC 4733 end packet (E bit) of digit 2: when the engine can know the digit.
            if packet[1] & 0x7F == 101 and packet[12] == 2 and packet[13] & 0x80 and not ends:
                ends.append(time.perf_counter())

        call.media._on_packet_sent = sent
        for digit in "10":
            await call.media.send_dtmf(digit, duration=0.06)
            await asyncio.sleep(0.04)
        await call.media.send_dtmf("2", duration=0.06)
        await pbx.wait_for("REFER", timeout=5)
        last_digit = ends[0]
        delays.append(pbx.arrived["REFER"] - last_digit)
        await asyncio.wait_for(call.ended.wait(), 5)
    pbx.close()
    return {
        "transfers": total,
        "dtmf_to_refer_p50_ms": 1000 * percentile(delays, 0.5),
        "dtmf_to_refer_p99_ms": 1000 * percentile(delays, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="*", default=["setup", "concurrent", "refer"])
    parser.add_argument("--setups", type=int, default=2000)
    parser.add_argument("--window", type=int, default=100, help="calls in flight, over all generators")
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--transfers", type=int, default=50)
    parser.add_argument("--agent", default="dtmf", choices=["dtmf", "receptionist"])
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (shared: other work runs too)"
    )
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.Process(target=engine_process, args=(theirs, args.agent), daemon=True)
    process.start()
    engine_addr = tuple(ours.recv())
    try:
        for what in args.what:
            ours.send("cpu")
            cpu_before = ours.recv()
            started = time.perf_counter()
            if what == "setup":
                result = bench_setups(engine_addr, args.setups, args.window, args.generators)
            elif what == "concurrent":
                result = asyncio.run(bench_concurrent(engine_addr, args.calls, args.seconds, ours))
            else:
                result = asyncio.run(bench_refer(engine_addr, args.transfers))
            ours.send("cpu")
            cpu = (ours.recv() - cpu_before) / (time.perf_counter() - started)
            figures = ", ".join(
                f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
            )
            print(f"{what}: {figures}, engine CPU {100 * cpu:.0f}% of a core")
    finally:
        ours.send("stop")
        process.join(15)


if __name__ == "__main__":
    main()
