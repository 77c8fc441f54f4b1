"""Transaction timer values (RFC 3261 §17 and Table 4; RFC 6026), as plain data.

Nothing in the SIP core reads a clock. A transaction is told `now` with every event, keeps the
instants at which it wants to be woken, and reports the earliest through ``next_deadline()``;
the I/O layer calls ``handle_timeout(now)`` when that instant has passed (the h11 manner).

Every timer of §17 is one of two kinds, which is why a transaction needs only two slots:

- a *retransmission* timer (A, E, G, and the 2xx retransmission of §13.3.1.4) that doubles,
  capped at T2 except for Timer A, and only runs over unreliable transports;
- an *ending* timer (B, C, D, F, H, I, J, K, L, M) after which the transaction terminates. Over a
  reliable transport the "absorb retransmissions" waits D, I, J and K are zero.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """T1, T2, T4 (seconds) and the few values derived from them that the RFC leaves open."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # cap on non-INVITE request and INVITE response retransmission intervals
    t4: float = 5.0  # how long a message can linger in the network
    # §17.1.1.2: "at least 32 seconds" for unreliable transports, whatever T1 is.
    timer_d: float = 32.0
    # §17.2.1: an INVITE server transaction sends 100 Trying unless the TU answers within
    # 200 ms. Our TU (the engine) usually answers at once (401, 503, 180), which would make an
    # immediate 100 a wasted packet; after this delay it still precedes the UAC's first
    # retransmission at T1. 0 sends it immediately.
    trying_delay: float = 0.2
    # An INVITE client transaction in Proceeding has no timer in §17.1.1: the TU is expected
    # to CANCEL. Like a proxy's Timer C (§16.6, > 3 min, restarted by each provisional), this
    # guard ends it anyway, so a peer that never sends a final response cannot leak it.
    timer_c: float = 180.0

    @property
    def transaction_timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1

    def first_retransmit(self, reliable: bool) -> float | None:
        """Timers A, E and G start at T1, and do not run at all over TCP/TLS."""
        return None if reliable else self.t1

    def wait_d(self, reliable: bool) -> float:
        # D absorbs final-response retransmissions, which the server sends for up to Timer H
        # (64*T1): with a large T1 the RFC's 32 s would be too short.
        return 0.0 if reliable else max(self.timer_d, self.transaction_timeout)

    def wait_i_k(self, reliable: bool) -> float:
        """Timers I and K: T4 to absorb stray ACKs / response retransmissions."""
        return 0.0 if reliable else self.t4

    def wait_j(self, reliable: bool) -> float:
        return 0.0 if reliable else self.transaction_timeout


DEFAULT_TIMERS = TimerSettings()
