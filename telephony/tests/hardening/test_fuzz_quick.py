"""The quick version of bench/fuzz_sip.py: 20,000 mutated inputs through parser, transactions and
SDP; no exception but the SIP core's typed ones, and memory that does not grow with the inputs."""

import random

from telephony.tests.hardening.fuzz_target import Target, mutate, rss_kib, seeds

INPUTS = 20_000


def test_twenty_thousand_mutated_inputs_raise_nothing_unexpected():
    rng = random.Random(4475)
    corpus = seeds()
    target = Target()
    for _ in range(2_000):  # warm up caches and the transaction table before measuring
        target(mutate(rng, corpus))
    start = rss_kib()
    for _ in range(INPUTS):
        target(mutate(rng, corpus))
    end = rss_kib()
    assert target.unexpected == 0, target.samples[:3]
    assert target.inputs == INPUTS + 2_000
    assert len(target.layer) < 2_000  # timers retire transactions: the table stays bounded
    assert end - start < 20_000, (start, end)  # KiB; a leak per input would show many MB here
