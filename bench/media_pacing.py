"""How evenly N concurrent calls pace their RTP, and what it costs.

Everything runs on 127.0.0.1. Engine processes (`--processes`, like sipserver processes side by
side) run N RtpSessions between them; each session plays a G.711 tone in 20 ms frames to a
peer, and receives, de-jitters and decodes 50 packets/s of the peer's tone, as in a call. The
peer is deliberately cheap (one plain socket, no asyncio, never reads what it is sent) so it
leaves the cores to the engine.

Printed for the engine side: the spread of the time between consecutive packets of a session,
|interval - 20 ms| (p50, p99, max); the p99 drift from each session's ideal 20 ms grid; engine
and peer CPU (100% = one core) and the whole machine's busy share; what the receive path saw.
The first second is warm-up and not measured.

    .venv/bin/python bench/media_pacing.py                       # N=100 and N=500, 10 s each
    .venv/bin/python bench/media_pacing.py --calls 500 --processes 2 --loop uvloop --seconds 30
"""

from __future__ import annotations

import argparse
import array
import asyncio
import math
import multiprocessing
import random
import resource
import socket
import statistics
import struct
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telephony.media.codecs import FRAME_DURATION, codec_by_name  # noqa: E402
from telephony.media.endpoint import RtpPortAllocator, RtpSession  # noqa: E402

HOST = "127.0.0.1"  # never anything else: this benchmark must not leave the machine
WARM_UP = 1.0
PEER_SLICES = 4  # the peer spreads each 20 ms round of sends over 4 slices of 5 ms


@dataclass
class EngineReport:
    cpu_percent: float  # of one core
    machine_busy_percent: float  # all cores, everything running on the machine
    interval_ms: list[float] = field(default_factory=list)  # |interval - 20 ms| samples
    drift_ms: list[float] = field(default_factory=list)  # lateness against the session's own grid
    packets_sent: int = 0
    packets_received: int = 0
    lost: int = 0
    late: int = 0


def tone(seconds: float, sample_rate: int) -> bytes:
    count = round(seconds * sample_rate)
    wave = (round(8000 * math.sin(2 * math.pi * 440 * i / sample_rate)) for i in range(count))
    return array.array("h", wave).tobytes()


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def install_loop(kind: str) -> None:
    if kind == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# --- the engine side ----------------------------------------------------------------------


async def run_engine(
    conn: Connection, calls: int, seconds: float, first_port: int, codec_name: str
) -> EngineReport:
    ports = RtpPortAllocator(first_port, first_port + 4 * calls + 100)
    send_times: list[list[float]] = [[] for _ in range(calls)]
    sessions = []
    for times in send_times:
        session = RtpSession(
            codec=codec_by_name(codec_name),
            on_packet_sent=lambda _data, times=times: times.append(time.perf_counter()),
        )
        await session.start(host=HOST, allocator=ports)
        sessions.append(session)
        await asyncio.sleep(FRAME_DURATION / calls)  # spread the sessions' phases over a frame
    conn.send([s.local_address for s in sessions])
    peer_address = await asyncio.to_thread(conn.recv)
    assert peer_address[0] == HOST
    audio = tone(seconds + WARM_UP + 2, sessions[0].codec.sample_rate)
    for session in sessions:
        session.set_remote(peer_address)
        session.play(audio)

    async def listen(session: RtpSession) -> None:  # stands in for speech recognition
        while True:
            await session.caller_audio.get()

    listeners = [asyncio.create_task(listen(s)) for s in sessions]
    await asyncio.sleep(WARM_UP)
    for times in send_times:
        times.clear()
    usage_before, machine_before = resource.getrusage(resource.RUSAGE_SELF), machine_busy()
    wall_before = time.perf_counter()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - wall_before
    usage, machine = resource.getrusage(resource.RUSAGE_SELF), machine_busy()

    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    busy = (machine[0] - machine_before[0]) / max(1, machine[1] - machine_before[1])
    report = EngineReport(cpu_percent=100 * cpu / wall, machine_busy_percent=100 * busy)
    for times in send_times:
        report.interval_ms += [
            abs(b - a - FRAME_DURATION) * 1000 for a, b in zip(times, times[1:], strict=False)
        ]
        lateness = [t - (times[0] + k * FRAME_DURATION) for k, t in enumerate(times)]
        report.drift_ms += [(x - min(lateness)) * 1000 for x in lateness]
    for session in sessions:
        stats = session.stats
        report.packets_sent += stats.packets_sent
        report.packets_received += stats.packets_received
        report.lost += stats.packets_lost
        report.late += stats.packets_late
    for task in listeners:
        task.cancel()
    for session in sessions:
        session.close()
    return report


def engine_process(
    conn: Connection, calls: int, seconds: float, first_port: int, codec: str, loop: str
) -> None:
    install_loop(loop)
    conn.send(asyncio.run(run_engine(conn, calls, seconds, first_port, codec)))


# --- the peer side ------------------------------------------------------------------------


def peer_process(conn: Connection, codec_name: str) -> None:
    """Sends one 20 ms packet per engine session per frame until told to stop."""
    codec = codec_by_name(codec_name)
    payloads = [codec.encode(frame) for frame in _frames(tone(1.0, codec.sample_rate), codec.frame_bytes)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # never read: let the kernel drop
    sock.bind((HOST, 0))
    conn.send(sock.getsockname())
    targets: list[tuple[str, int]] = conn.recv()
    assert all(host == HOST for host, _ in targets)
    rng = random.Random(1)
    ssrcs = [rng.getrandbits(32) for _ in targets]
    header = struct.Struct("!BBHII")
    slices = [range(i, len(targets), PEER_SLICES) for i in range(PEER_SLICES)]
    start = time.perf_counter()
    tick = 0
    while not conn.poll():
        time.sleep(max(0.0, start + tick * FRAME_DURATION / PEER_SLICES - time.perf_counter()))
        frame = tick // PEER_SLICES
        payload = payloads[frame % len(payloads)]
        for i in slices[tick % PEER_SLICES]:
            data = header.pack(0x80, codec.payload_type, frame & 0xFFFF, (frame * 160) & 0xFFFFFFFF, ssrcs[i])
            sock.sendto(data + payload, targets[i])
        tick += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send(100 * (usage.ru_utime + usage.ru_stime) / (time.perf_counter() - start))


def _frames(pcm: bytes, size: int) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]


# --- orchestration ------------------------------------------------------------------------


def measure(calls: int, processes: int, seconds: float, codec: str, loop: str) -> tuple[EngineReport, float]:
    ctx = multiprocessing.get_context("spawn")
    peer_conn, peer_child = ctx.Pipe()
    peer = ctx.Process(target=peer_process, args=(peer_child, codec))
    peer.start()
    engines = []
    for index in range(processes):
        share = calls // processes + (1 if index < calls % processes else 0)
        conn, child = ctx.Pipe()
        process = ctx.Process(
            target=engine_process, args=(child, share, seconds, 20000 + 8000 * index, codec, loop)
        )
        process.start()
        engines.append((process, conn))
    addresses = [address for _, conn in engines for address in conn.recv()]
    peer_address = peer_conn.recv()
    peer_conn.send(addresses)
    for _, conn in engines:
        conn.send(peer_address)
    reports: list[EngineReport] = [conn.recv() for _, conn in engines]
    peer_conn.send("stop")
    peer_cpu: float = peer_conn.recv()
    for process, _ in engines:
        process.join(timeout=30)
    peer.join(timeout=30)

    merged = EngineReport(
        cpu_percent=sum(r.cpu_percent for r in reports),
        machine_busy_percent=statistics.mean(r.machine_busy_percent for r in reports),
    )
    for report in reports:
        merged.interval_ms += report.interval_ms
        merged.drift_ms += report.drift_ms
        merged.packets_sent += report.packets_sent
        merged.packets_received += report.packets_received
        merged.lost += report.lost
        merged.late += report.late
    return merged, peer_cpu


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 500], help="concurrent calls (N)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--processes", type=int, default=1, help="engine processes sharing the calls")
    parser.add_argument("--codec", default="PCMU", choices=["PCMU", "PCMA"])
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    args = parser.parse_args()

    print(
        f"loop={args.loop} codec={args.codec} engine processes={args.processes} "
        f"seconds={args.seconds:g} (+{WARM_UP:g} s warm-up), {multiprocessing.cpu_count()} cores"
    )
    print(
        f"{'calls':>5} | {'|interval-20ms| p50':>19} {'p99':>7} {'max':>7} | {'drift p99':>9} | "
        f"{'engine CPU':>10} {'peer CPU':>8} {'machine':>7} | {'sent':>7} {'received':>8} {'lost':>5} {'late':>5}"
    )
    for calls in args.calls:
        report, peer_cpu = measure(calls, args.processes, args.seconds, args.codec, args.loop)
        print(
            f"{calls:>5} | {percentile(report.interval_ms, 50):>17.2f}ms "
            f"{percentile(report.interval_ms, 99):>5.2f}ms {max(report.interval_ms):>5.1f}ms | "
            f"{percentile(report.drift_ms, 99):>7.2f}ms | {report.cpu_percent:>9.0f}% {peer_cpu:>7.0f}% "
            f"{report.machine_busy_percent:>6.0f}% | {report.packets_sent:>7} {report.packets_received:>8} "
            f"{report.lost:>5} {report.late:>5}",
            flush=True,
        )


if __name__ == "__main__":
    main()
