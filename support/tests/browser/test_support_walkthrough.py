"""Issue #9, "Done means", tried in a real browser against a real failure.

The customer's PBX (sipp) registers, sends a call the trunk cannot take (no agent linked), hangs
up its registration, then comes back with a wrong password. All of it goes through the engine and
a Celery worker into the database, so what support reads is what the engine saw.

Support staff: find the trunk by its DID, read why it fails, open the REGISTER trace, download the
.pcap and open it with tshark, download the redacted bundle. The customer (Owner): the same health
for their own trunk, the alert banner once it has been down long enough (the beat task, run by the
worker), and its end when the PBX registers again. Screenshots: test-artifacts/support-*.png.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from conftest import PASSWORD
from support import tasks
from support.models import SipTrace, TrunkAlert
from support.tests.conftest import AUTH_USERNAME, TRUNK_PASSWORD
from trunks.models import RegistrationState, TrunkEvent, TrunkStatus
from trunks.tests.browser.peers import (
    expect,
    log_in,
    needs_peers,
    shot,
    sipp_output,
    wait_for,
    wait_until_engine_knows,
)

pytestmark = needs_peers

DID = "+27215550123"  # the trunk's (support/tests/conftest.py)
CALLER = "+27825550177"
WRONG_PASSWORD = "Sup3r-secret-trunk-pass-25"  # one character off: the classic typo
REGISTRAR = settings.SIP_DOMAIN


def status_of(trunk) -> TrunkStatus:
    return TrunkStatus.objects.get(trunk=trunk)


def pbx_goes_wrong(pbx, trunk) -> None:
    """Registers, sends a call, unregisters, then fails with a wrong password: each step waits
    until the worker has applied what the engine reported."""
    credentials = {"username": AUTH_USERNAME, "registrar": REGISTRAR}
    wait_until_engine_knows(pbx.engine, AUTH_USERNAME)
    result = pbx.register(password=TRUNK_PASSWORD, **credentials)
    assert result.returncode == 0, sipp_output(result)
    assert wait_for(lambda: status_of(trunk).state == RegistrationState.REGISTERED)
    result = pbx.call(did=DID, caller=CALLER)
    assert result.returncode == 0, sipp_output(result)
    assert wait_for(lambda: SipTrace.objects.filter(trunk=trunk, kind="call").exists())
    result = pbx.unregister(password=TRUNK_PASSWORD, **credentials)
    assert result.returncode == 0, sipp_output(result)
    assert wait_for(lambda: status_of(trunk).state == RegistrationState.NOT_REGISTERED)
    result = pbx.register(password=WRONG_PASSWORD, **credentials)
    assert result.returncode != 0, sipp_output(result)  # 403 Forbidden
    assert wait_for(lambda: SipTrace.objects.filter(trunk=trunk, outcome="403 Forbidden").exists())
    assert wait_for(lambda: status_of(trunk).last_failure == "wrong password")


def in_order(expected: list[str], seen: list[str]) -> bool:
    """`expected` appears in `seen` in that order; on a loaded machine sipp may retransmit, and a
    trace keeps every copy."""
    remaining = iter(seen)
    return all(any(item == label for item in remaining) for label in expected) and set(seen) == set(expected)


def findings(page) -> list[str]:
    return page.locator("#diagnosis li.finding").evaluate_all("els => els.map(e => e.dataset.code)")


def test_support_finds_why_a_trunk_fails_and_the_customer_sees_it_and_its_alert(
    new_page, pbx, trunk, other_trunk, support_user, owner, tmp_path
):
    pbx_goes_wrong(pbx, trunk)
    # What the engine recorded holds the caller and the username: hiding them below is real work.
    recorded = json.dumps([t.messages for t in SipTrace.objects.filter(trunk=trunk)])
    assert CALLER in recorded and AUTH_USERNAME in recorded
    secrets = [TRUNK_PASSWORD, WRONG_PASSWORD, AUTH_USERNAME, trunk.ha1_md5, trunk.ha1_sha256]

    # --- support staff -----------------------------------------------------------------------
    page = new_page()
    log_in(page, support_user.email, PASSWORD)
    page.click("nav >> text=Support console")
    expect(page.locator("#counts [data-filter=failing_auth] b")).to_have_text("1")
    page.fill("#q", "+27 21 555 0123")  # as the customer read it out on the phone
    rows = page.locator("#console-table tbody tr")
    expect(rows).to_have_count(1)  # htmx swapped the results in as support typed
    expect(rows.first).to_contain_text("Acme Dental")
    expect(rows.first).to_contain_text("wrong password")
    shot(page, "support-1-console-search")

    page.click(f"#console-table tr[data-trunk='{trunk.pk}'] >> text=Main office")
    expect(page.locator("h1")).to_contain_text("Health of “Main office”")
    expect(page.locator("#health-state")).to_have_text("Not registered")
    wrong = page.locator("#diagnosis [data-code=wrong_credentials]")
    expect(wrong).to_contain_text("The PBX's REGISTER was refused: wrong credentials")
    expect(wrong).to_contain_text("regenerate the password")
    expect(page.locator("#diagnosis [data-code=agent_not_linked]")).to_be_visible()
    expect(page.locator("#auth-failures")).to_contain_text(
        f"Rejected: wrong password from 127.0.0.1:{pbx.port} (SIPp walkthrough PBX)"
    )
    expect(page.locator("#timeline")).to_contain_text("Unregistered by the PBX")
    expect(page.locator("#calls")).to_contain_text("+*******0177")  # support sees the caller masked
    support_findings = findings(page)
    html = page.content()
    assert CALLER not in html and not [s for s in secrets if s in html]
    shot(page, "support-2-health")

    # The REGISTER that failed: ladder and text.
    page.locator("#traces tr", has_text="403 Forbidden").locator("a.trace-link").click()
    expect(page.locator("h1")).to_have_text("REGISTER trace: 403 Forbidden")
    labels = page.locator("#ladder .arrow").evaluate_all("els => els.map(e => e.dataset.label)")
    assert in_order(["REGISTER", "401 Unauthorized", "REGISTER", "403 Forbidden"], labels), labels
    expect(page.locator("#trace-text")).to_contain_text("REGISTER sip:sip.voice.getsmartalex.com SIP/2.0")
    expect(page.locator("#trace-text")).to_contain_text("SIP/2.0 403 Forbidden")
    html = page.content()
    assert not [s for s in secrets if s in html]
    shot(page, "support-3-register-trace")

    # The same exchange as a .pcap, downloaded by the browser and read by tshark.
    with page.expect_download() as download:
        page.click("#pcap")
    pcap = tmp_path / download.value.suggested_filename
    download.value.save_as(pcap)
    assert pcap.suffix == ".pcap"
    fields = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    packets = [line.strip("\t") for line in fields if line.strip()]
    assert in_order(["REGISTER", "401", "REGISTER", "403"], packets), packets
    dump = subprocess.run(
        ["tshark", "-r", str(pcap), "-V"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "Session Initiation Protocol (REGISTER)" in dump
    assert not [s for s in secrets if s in dump]

    # The support bundle, downloaded the same way: no credential, no caller number.
    page.click("text=← back")
    with page.expect_download() as download:
        page.click("#bundle")
    bundle_text = download.value.path().read_text()
    bundle = json.loads(bundle_text)
    assert bundle["status"]["last_failure"] == "wrong password"
    assert "wrong_credentials" in {f["code"] for f in bundle["diagnosis"]}
    assert {t["kind"] for t in bundle["traces"]} == {"register", "call"}
    assert [s for s in secrets if s in bundle_text] == []
    for number in (CALLER, CALLER.lstrip("+"), DID, DID.lstrip("+")):
        assert number not in bundle_text
    assert "0177" in bundle_text and "0123" in bundle_text  # masked, not dropped
    assert not re.search(r'response="[0-9a-f]{32}', bundle_text)

    # --- the customer --------------------------------------------------------------------------
    customer = new_page()
    log_in(customer, owner.email, PASSWORD)
    customer.click("nav >> text=Trunks")
    customer.click("text=Main office")
    customer.click("#trunk-health")
    expect(customer.locator("#health-state")).to_have_text("Not registered")
    expect(customer.locator("#diagnosis [data-code=wrong_credentials]")).to_be_visible()
    assert findings(customer) == support_findings
    expect(customer.locator("#calls")).to_contain_text(CALLER)  # their own caller, in full
    expect(customer.locator("[role=alert][data-alert]")).to_have_count(0)
    shot(customer, "support-4-customer-health")

    # What support looked at is on the Owner's audit page.
    customer.goto("/settings/support-access/")
    for words in ("trunk “Main office”", "register trace", ".pcap", "bundle"):
        expect(customer.locator("main")).to_contain_text(re.compile(re.escape(words), re.IGNORECASE))
    expect(customer.locator("main")).to_contain_text(support_user.email)

    # The trunk has been down longer than the alert threshold: the data says so (it went down
    # that long ago), and the beat task, run by the worker, opens the alert.
    went_down = timezone.now() - timedelta(minutes=settings.TRUNK_ALERT_DOWN_MINUTES + 1)
    TrunkStatus.objects.filter(trunk=trunk).update(expires_at=went_down)
    TrunkEvent.objects.filter(trunk=trunk, kind="unregistered").update(at=went_down)
    assert tasks.alerts_sweep.delay().get(timeout=60) == {"opened": 1, "closed": 0}
    customer.goto("/")
    banner = customer.locator("[role=alert][data-alert=down]")
    expect(banner).to_contain_text(f"Trunk “Main office” is down since {went_down:%Y-%m-%d %H:%M} UTC")
    shot(customer, "support-5-customer-alert")
    banner.locator("text=See why").click()
    expect(customer.locator("#health-state")).to_have_text("Not registered")
    # The health page repeats it under its heading.
    expect(customer.locator("p.alert-banner[data-alert=down]:not([role])")).to_contain_text("down since")

    # The PBX gets the right password again: registered, and the next sweep closes the alert.
    result = pbx.register(password=TRUNK_PASSWORD, username=AUTH_USERNAME, registrar=REGISTRAR)
    assert result.returncode == 0, sipp_output(result)
    assert wait_for(lambda: status_of(trunk).state == RegistrationState.REGISTERED)
    assert tasks.alerts_sweep.delay().get(timeout=60) == {"opened": 0, "closed": 1}
    assert not TrunkAlert.objects.get(trunk=trunk).is_open
    customer.reload()
    expect(customer.locator("#health-state")).to_have_text("Registered")
    expect(customer.locator("[data-alert]")).to_have_count(0)
    expect(customer.locator("#diagnosis [data-code=wrong_credentials]")).to_have_count(0)
    shot(customer, "support-6-customer-recovered")
