"""CPU per authenticated registration inside one engine process, without sockets or sipp.

Feeds sipp-shaped REGISTER datagrams to a real `Engine` (parser, transaction layer, abuse guard,
registrar, digest, group-committed location store) through the UDP receive path, answers each
401 with MD5 digest credentials (qop=auth), and counts the engine's CPU per registration
(REGISTER → 401 → REGISTER with credentials → 200). Registrations go in waves, as under load,
so group commit batches them. The client's own work (building requests, computing digests) is
timed apart and left out.

    .venv/bin/python bench/register_cpu.py                      # 20 000 registrations, Redis db 12
    .venv/bin/python bench/register_cpu.py --store sqlite --count 5000
    .venv/bin/python bench/register_cpu.py --profile 25         # cProfile: the 25 costliest functions
    .venv/bin/python bench/register_cpu.py --gc default         # CPython's collector thresholds
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartalex.settings.dev")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

settings.SIP_METRICS_PORT = 0  # no metrics listener for a benchmark

from telephony.config import ConfigWatcher, build_config  # noqa: E402
from telephony.engine import Engine, EngineSettings  # noqa: E402
from telephony.event_sink import EventSink  # noqa: E402
from telephony.location import RedisLocationStore, SqliteLocationStore  # noqa: E402
from telephony.management.commands.sipserver import tune_gc  # noqa: E402

REALM = "sip.bench.test"
SOURCE = ("127.0.0.1", 5080)
NONCE = re.compile(rb'nonce="([^"]+)"')
# Call-IDs differ from one run to the next: the store keeps the last run's bindings, and the same
# Call-ID with a CSeq that is not higher is (rightly) refused as out of order.
RUN = os.urandom(4).hex()


def register(user: str, number: int, cseq: int, port: int, authorization: str = "") -> bytes:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1234-{number}-{cseq}\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag=1234SIPpTag00{number}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: {number}-{RUN}@127.0.0.1\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:5080>\r\n"
        f"{auth}"
        "Max-Forwards: 70\r\nExpires: 3600\r\nUser-Agent: SIPp\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def credentials(user: str, password: str, nonce: str, uri: str) -> str:
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5(f"{user}:{REALM}:{password}"), md5(f"REGISTER:{uri}")
    cnonce, nc = "0a4f113b", "00000001"
    response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}",realm="{REALM}",nonce="{nonce}",uri="{uri}",'
        f'response="{response}",algorithm=MD5,qop=auth,cnonce="{cnonce}",nc={nc}'
    )


def trunk_rows(count: int) -> list[dict]:
    rows = []
    for i in range(1, count + 1):
        user, password = f"user{i:04d}", f"benchpassword{i:04d}"
        rows.append(
            {
                "id": 900_000 + i,
                "tenant_id": 1,
                "name": user,
                "pbx_domain": "pbx.bench.test",
                "auth_username": user,
                "ha1_md5": hashlib.md5(f"{user}:{REALM}:{password}".encode()).hexdigest(),
                "ha1_sha256": hashlib.sha256(f"{user}:{REALM}:{password}".encode()).hexdigest(),
            }
        )
    return rows


async def run(args) -> None:
    config = build_config(trunk_rows(args.trunks), version=1)
    if args.store == "redis":
        store = RedisLocationStore(args.redis)
    else:
        store = SqliteLocationStore(Path(tempfile.mkdtemp()) / "loc.sqlite3")
    engine = Engine(
        EngineSettings(
            realm=REALM,
            host="127.0.0.1",
            port=0,
            tls_port=None,
            nonce_secret=b"b" * 32,
            heartbeat_interval=3600,
        ),
        store=store,
        watcher=ConfigWatcher(load=lambda: config, read_version=lambda: 1, poll_interval=60),
        sink=EventSink(send=lambda events: None, interval=0.5),
    )
    port = (await engine.start())["udp"][1]
    if args.gc == "tuned":
        tune_gc()  # as `manage.py sipserver` does after start
    answers: dict[str, bytes] = {}

    expected = 0
    arrived: asyncio.Event = asyncio.Event()

    def capture(data: bytes, peer) -> bool:
        call_id = data[data.index(b"Call-ID: ") + 9 : data.index(b"\r\n", data.index(b"Call-ID: "))]
        answers[call_id.decode()] = data
        if len(answers) >= expected:
            arrived.set()
        return True

    engine.transports.send = capture
    engine.stack._send = capture

    async def drain(count: int) -> None:
        # Waits without spinning, so that the CPU counted is the engine's, as when it serves sipp.
        nonlocal expected
        expected = count
        if len(answers) < count:
            try:
                await asyncio.wait_for(arrived.wait(), 30)
            except TimeoutError:
                raise SystemExit(f"only {len(answers)} of {count} answers") from None
        arrived.clear()

    client = 0.0
    number = 0
    done = 0
    profiler = cProfile.Profile() if args.profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    while done < args.count:
        wave = min(args.wave, args.count - done)
        t = time.process_time()
        firsts = []
        for _ in range(wave):
            number += 1
            user = f"user{(number - 1) % args.trunks + 1:04d}"
            firsts.append((number, user, register(user, number, 1, port)))
        client += time.process_time() - t
        answers.clear()
        for _, _, data in firsts:
            engine.transports._datagram(data, SOURCE)
        await drain(wave)
        t = time.process_time()
        seconds = []
        for n, user, _ in firsts:
            answer = answers[f"{n}-{RUN}@127.0.0.1"]
            assert answer.startswith(b"SIP/2.0 401"), answer[:80]
            nonce = NONCE.search(answer).group(1).decode()
            password = f"benchpassword{user[4:]}"
            seconds.append(
                register(user, n, 2, port, credentials(user, password, nonce, f"sip:127.0.0.1:{port}"))
            )
        client += time.process_time() - t
        answers.clear()
        for data in seconds:
            engine.transports._datagram(data, SOURCE)
        await drain(wave)
        bad = [a[:40] for a in answers.values() if not a.startswith(b"SIP/2.0 200")]
        if bad:
            raise SystemExit(f"not registered: {bad[:3]}")
        done += wave
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0 - client, time.perf_counter() - wall0
    await engine.stop()
    print(
        f"{args.count} registrations ({args.store} store, waves of {args.wave}, {args.gc} gc): "
        f"{1e6 * cpu / args.count:.0f} µs CPU per authenticated registration "
        f"({1e6 * client / args.count:.0f} µs client work left out; wall {wall:.1f} s)"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--trunks", type=int, default=1000)
    parser.add_argument("--wave", type=int, default=100, help="registrations in flight together")
    parser.add_argument("--store", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    parser.add_argument(
        "--gc", choices=("tuned", "default"), default="tuned", help="garbage collector settings"
    )
    parser.add_argument("--sort", default="tottime", help="cProfile order: tottime or cumulative")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
