import pytest

from telephony.abuse import AbuseGuard, AbuseSettings, Verdict


@pytest.mark.parametrize("ua", ["friendly-scanner", "sipvicious 0.3.4", "VaxSIPUserAgent/3.1", "sipcli/v1.8"])
def test_scanners_are_dropped(ua):
    assert AbuseGuard().check("198.51.100.1", ua, now=0) is Verdict.SCANNER


@pytest.mark.parametrize(
    "ua", ["FPBX-16.0.33(18.20.0)", "3CXPhoneSystem 20.0", "Asterisk PBX 20.5", None, ""]
)
def test_pbxes_are_allowed(ua):
    assert AbuseGuard().check("198.51.100.1", ua, now=0) is Verdict.ALLOW


def test_twenty_failures_in_five_minutes_ban_for_an_hour():
    guard = AbuseGuard()
    banned = [guard.record_auth_failure("198.51.100.2", now=float(i * 10)) for i in range(20)]
    assert banned == [False] * 19 + [True]
    assert guard.check("198.51.100.2", None, now=200) is Verdict.BANNED
    assert guard.check("198.51.100.3", None, now=200) is Verdict.ALLOW
    assert guard.check("198.51.100.2", None, now=190 + 3600 + 1) is Verdict.ALLOW


def test_failures_spread_over_more_than_the_window_do_not_ban():
    guard = AbuseGuard()
    assert not any(guard.record_auth_failure("198.51.100.2", now=float(i * 20)) for i in range(40))


def test_a_whitelisted_source_is_never_banned():
    guard = AbuseGuard(is_whitelisted=lambda ip: ip == "203.0.113.5")
    assert not any(guard.record_auth_failure("203.0.113.5", now=float(i)) for i in range(100))
    guard.merge_bans({"203.0.113.5": 10_000.0}, now=0)
    assert guard.check("203.0.113.5", None, now=5) is Verdict.ALLOW


def test_flood_limit_refills_over_time():
    guard = AbuseGuard(AbuseSettings(flood_rate=10, flood_burst=5))
    verdicts = [guard.check("198.51.100.9", None, now=0.0) for _ in range(7)]
    assert verdicts.count(Verdict.ALLOW) == 5 and verdicts[-1] is Verdict.FLOOD
    assert guard.check("198.51.100.9", None, now=0.5) is Verdict.ALLOW
    assert guard.counters["flood_dropped"] == 2


def test_loopback_and_trusted_proxies_are_not_flood_limited_or_banned():
    guard = AbuseGuard(
        AbuseSettings(flood_rate=1, flood_burst=1, trusted_sources=("127.0.0.0/8", "192.0.2.10/32"))
    )
    assert all(guard.check("192.0.2.10", None, now=0.0) is Verdict.ALLOW for _ in range(50))
    assert not any(guard.record_auth_failure("127.0.0.1", now=float(i)) for i in range(50))
    assert guard.check("friendly", "friendly-scanner", now=0.0) is Verdict.SCANNER
    assert [guard.check("198.51.100.1", None, now=0.0) for _ in range(2)] == [Verdict.ALLOW, Verdict.FLOOD]
