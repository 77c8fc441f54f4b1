"""Scanner, flood and brute-force defences, decided per packet from memory (time is an argument).

- Known scanner User-Agents (SIPVicious, friendly-scanner…) are dropped without an answer, so the
  scanner learns nothing, not even that a SIP server listens.
- A token bucket per source address caps how many requests it may send (the flood limit).
- After `max_failures` authentication failures within `failure_window` seconds, a source is
  ignored for `ban_seconds` — unless a trunk whitelists it: a customer's PBX is never banned.

Bans are shared between engines through a `BanBook` (telephony/shared_state.py: Redis in
production): the guard reports each ban it decides to `on_ban`, and adopts the others' with
`merge_bans`. The in-memory table here is what the hot path reads.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

SCANNER_USER_AGENTS = re.compile(
    r"friendly-scanner|sipvicious|sipcli|sip-scan|sipsak|sundayddr|iWar|VaxSIPUserAgent|pplsip|"
    r"smap|nmap|SIPScan|VaxIPUserAgent|sipptk|Ozeki|Cisco-SIPGateway\s*$",
    re.IGNORECASE,
)


class Verdict(Enum):
    ALLOW = "allow"
    BANNED = "banned"
    SCANNER = "scanner"
    FLOOD = "flood"


@dataclass
class AbuseSettings:
    max_failures: int = 20
    failure_window: float = 300.0
    ban_seconds: float = 3600.0
    # Generous: a PBX with hundreds of lines registering and calling stays far below it.
    flood_rate: float = 200.0
    flood_burst: float = 400.0
    max_tracked_sources: int = 100_000
    # Sources exempt from the flood limit and bans: SIP proxies in front of the engines (all traffic
    # arrives from them, e.g. Kamailio's dispatcher) and loopback. Scanners are still dropped.
    trusted_sources: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class AbuseGuard:
    def __init__(
        self,
        settings: AbuseSettings | None = None,
        *,
        is_whitelisted: Callable[[str], bool] = lambda ip: False,
        on_ban: Callable[[str, float], None] = lambda ip, until: None,
    ) -> None:
        self.settings = settings or AbuseSettings()
        self.on_ban = on_ban  # (ip, until) for each ban decided here, not for merged ones
        self._trusted = tuple(ipaddress.ip_network(n) for n in self.settings.trusted_sources)
        # A proxy or load generator in front of us is trusted and over its flood budget on
        # every request: remember the answer rather than parse its address each time.
        self._trusted_answers: dict[str, bool] = {}
        self.is_whitelisted = lambda ip: self.is_trusted(ip) or is_whitelisted(ip)
        self.bans: dict[str, float] = {}  # ip → banned until
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.counters = {
            "scanner_dropped": 0,
            "flood_dropped": 0,
            "banned_dropped": 0,
            "bans": 0,
            "auth_failures": 0,
        }

    def check(self, ip: str, user_agent: str | None, now: float) -> Verdict:
        until = self.bans.get(ip)
        if until is not None:
            if until > now:
                self.counters["banned_dropped"] += 1
                return Verdict.BANNED
            del self.bans[ip]
        if user_agent and SCANNER_USER_AGENTS.search(user_agent):
            self.counters["scanner_dropped"] += 1
            return Verdict.SCANNER
        if not self._take_token(ip, now) and not self.is_trusted(ip):  # trusted only pays when limited
            self.counters["flood_dropped"] += 1
            return Verdict.FLOOD
        return Verdict.ALLOW

    def is_trusted(self, ip: str) -> bool:
        answer = self._trusted_answers.get(ip)
        if answer is None:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                return False
            answer = any(address in net for net in self._trusted if net.version == address.version)
            if len(self._trusted_answers) >= self.settings.max_tracked_sources:
                self._trusted_answers.clear()  # a scan from many addresses: start over, stay bounded
            self._trusted_answers[ip] = answer
        return answer

    def _take_token(self, ip: str, now: float) -> bool:
        s = self.settings
        bucket = self._buckets.get(ip)
        if bucket is None:
            bucket = self._buckets[ip] = _Bucket(s.flood_burst, now)
            if len(self._buckets) > s.max_tracked_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(ip)
            bucket.tokens = min(s.flood_burst, bucket.tokens + (now - bucket.stamp) * s.flood_rate)
            bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def record_auth_failure(self, ip: str, now: float) -> bool:
        """Counts a failure; returns True when this one bans the source."""
        s = self.settings
        self.counters["auth_failures"] += 1
        if self.is_whitelisted(ip):
            return False
        window = self._failures.get(ip)
        if window is None:
            window = self._failures[ip] = deque()
            if len(self._failures) > s.max_tracked_sources:
                self._failures.popitem(last=False)
        window.append(now)
        while window and window[0] <= now - s.failure_window:
            window.popleft()
        if len(window) >= s.max_failures:
            self.ban(ip, until=now + s.ban_seconds)
            del self._failures[ip]
            return True
        return False

    def ban(self, ip: str, *, until: float) -> None:
        if self.is_whitelisted(ip):
            return
        if ip not in self.bans:
            self.counters["bans"] += 1
        self.bans[ip] = max(until, self.bans.get(ip, 0.0))
        self.on_ban(ip, self.bans[ip])

    def merge_bans(self, bans: dict[str, float], now: float) -> None:
        """Adopts bans decided by other engines."""
        for ip, until in bans.items():
            if until > now and not self.is_whitelisted(ip):
                self.bans[ip] = max(until, self.bans.get(ip, 0.0))

    def forget_whitelisted(self) -> None:
        """Lifts the bans of sources that a trunk now allows (call it on a configuration change):
        a customer who adds their PBX's address after a run of wrong passwords is let in at once."""
        for ip in [ip for ip in self.bans if self.is_whitelisted(ip)]:
            del self.bans[ip]
