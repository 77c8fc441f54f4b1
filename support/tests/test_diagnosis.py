"""The troubleshooting guide's symptoms, as a table: facts in, findings out (no database)."""

import pytest

from support.diagnosis import Severity, TrunkFacts, diagnose

HEALTHY = TrunkFacts(
    state="registered",
    ever_registered=True,
    registered_transport="udp",
    did_count=1,
    has_agent=True,
    extension_count=3,
    pbx_domain="pbx.acme.test",
    registered_source_ip="203.0.113.10",
)


def codes(facts: TrunkFacts) -> list[str]:
    return [f.code for f in diagnose(facts)]


def with_(**changes) -> TrunkFacts:
    return TrunkFacts(**{**HEALTHY.__dict__, **changes})


@pytest.mark.parametrize(
    ("facts", "expected", "words"),
    [
        (HEALTHY, ["ok"], "No problem found"),
        (with_(suspended=True), ["suspended"], "suspended"),
        (
            with_(state="not_registered", registered_transport="", recent_auth_failures=("wrong_password",)),
            ["wrong_credentials"],
            "wrong credentials",
        ),
        (
            with_(state="not_registered", registered_transport="", recent_auth_failures=("wrong_realm",)),
            ["wrong_credentials"],
            "leave the Auth realm blank",
        ),
        (with_(sip_alg_suspected=True), ["sip_alg"], "SIP ALG suspected"),
        (with_(registered_transport="tcp"), ["transport_mismatch"], "Transport mismatch"),
        (
            with_(state="not_registered", registered_transport="", ever_registered=False),
            ["not_registered"],
            "never registered",
        ),
        (with_(state="not_registered", registered_transport=""), ["not_registered"], "expired"),
        (with_(state="unreachable"), ["unreachable"], "does not answer OPTIONS"),
        (with_(flapping=True), ["flapping"], "flapping"),
        (with_(did_count=0), ["no_did"], "no DIDs"),
        (with_(unknown_dids_called=("+27215550999",)), ["did_not_on_trunk"], "+27215550999"),
        (with_(has_agent=False), ["agent_not_linked"], "Agent Studio"),
        (with_(extension_count=0), ["no_extensions"], "Settings → PBX"),
        (with_(transfer_failure_codes=(486, 603)), ["extension_rejected"], "486/603"),
        (with_(transfer_failure_codes=(404,)), ["wrong_pbx_domain"], "sip:EXT@pbx.acme.test"),
        (with_(pbx_domain="198.51.100.77"), ["wrong_pbx_domain"], "registers from 203.0.113.10"),
    ],
)
def test_symptom_table(facts, expected, words):
    findings = diagnose(facts)
    assert [f.code for f in findings] == expected
    assert words in findings[0].words + findings[0].fix


def test_ip_whitelist_trunk_need_not_register():
    facts = with_(
        state="not_registered", registered_transport="", uses_credentials=False, uses_ip_whitelist=True
    )
    assert codes(facts) == ["ok"]


def test_unknown_extension_count_is_not_a_problem():
    assert codes(with_(extension_count=None)) == ["ok"]


def test_private_pbx_domain_behind_nat_is_normal():
    assert codes(with_(pbx_domain="192.168.1.10")) == ["ok"]


def test_errors_come_before_warnings():
    findings = diagnose(with_(sip_alg_suspected=True, has_agent=False, suspended=True))
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=[Severity.ERROR, Severity.WARNING, Severity.INFO].index)
    assert {f.code for f in findings} == {"suspended", "agent_not_linked", "sip_alg"}
    assert all(f.fix for f in findings)
