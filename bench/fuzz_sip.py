"""Fuzzes the SIP core (parser, stream framer, header views, transaction layer, SDP) and prints
inputs/s, unexpected exceptions (must be 0) and RSS at start and end (must stay flat).

    python bench/fuzz_sip.py                      # 1,000,000 inputs, atheris (coverage-guided)
    python bench/fuzz_sip.py --inputs 200000 --engine mutate   # seeded mutations, no atheris

The target is telephony/tests/hardening/fuzz_target.py; the suite runs 20,000 inputs of it.
Unexpected inputs are written to --crash-dir for replay.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def report(target, started: float, rss_start: int, rss_end: int, crash_dir: Path) -> int:
    elapsed = time.monotonic() - started
    print(f"inputs:      {target.inputs:,}")
    print(f"inputs/s:    {target.inputs / elapsed:,.0f}  ({elapsed:.0f} s)")
    print(f"reached:     {target.reached}")
    print(f"exceptions:  {target.unexpected}  (anything but the SIP core's typed errors; must be 0)")
    print(f"transactions still in the table: {len(target.layer)}")
    print(f"RSS:         start {rss_start / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB")
    crash_dir.mkdir(parents=True, exist_ok=True)
    for n, (data, trace) in enumerate(target.samples):
        (crash_dir / f"crash-{n}.sip").write_bytes(data)
        (crash_dir / f"crash-{n}.txt").write_text(trace)
    return 1 if target.unexpected else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=["atheris", "mutate"], default="atheris")
    parser.add_argument("--crash-dir", type=Path, default=Path("test-artifacts/fuzz"))
    parser.add_argument("--seed", type=int, default=4475)
    args = parser.parse_args()

    if args.engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["telephony.sip"]):
            from telephony.tests.hardening.fuzz_target import Target, rss_kib, seeds
    else:
        from telephony.tests.hardening.fuzz_target import Target, mutate, rss_kib, seeds

    target = Target()
    corpus = seeds()
    for data in corpus:
        target(data)
    rss_start = rss_kib()
    started = time.monotonic()
    if args.engine == "mutate":
        import random

        rng = random.Random(args.seed)
        for _ in range(args.inputs):
            target(mutate(rng, corpus))
        return report(target, started, rss_start, rss_kib(), args.crash_dir)

    import os
    import tempfile

    corpus_dir = Path(tempfile.mkdtemp(prefix="sip-fuzz-corpus-"))
    for n, data in enumerate(corpus):
        (corpus_dir / f"seed-{n}").write_bytes(data)
    base = target.inputs

    def one_input(data: bytes) -> None:
        target(data)
        if target.inputs - base >= args.inputs:
            # libFuzzer leaves with _exit (no atexit, no finally): report and leave the same way.
            code = report(target, started, rss_start, rss_kib(), args.crash_dir)
            sys.stdout.flush()
            os._exit(code)

    atheris.Setup(
        [sys.argv[0], f"-runs={args.inputs * 2}", "-max_len=4096", "-print_final_stats=0", str(corpus_dir)],
        one_input,
    )
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
