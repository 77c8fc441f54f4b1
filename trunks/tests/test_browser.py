"""The whole journey in a real browser (Debian's Chromium): sign up, Connect Your Carrier with 3CX,
inline validation without a reload, create, copy the details, watch the PBX register, add a DID,
link an agent. A screenshot of each wizard step is kept in test-artifacts/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from trunks.models import SipTrunk, TrunkEvent, TrunkStatus
from trunks.tests.browser.steps import add_did_on_trunk_page, link_new_agent

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
playwright_sync = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def page(live_server):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 1000})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield page
        page.goto("about:blank")  # stop the htmx polling before the server goes away
        context.close()
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"wizard-{name}.png"), full_page=True)


def test_connect_your_carrier_end_to_end(page):
    expect = playwright_sync.expect
    # Sign up: an empty workspace invites to connect the carrier.
    page.goto("/signup/")
    page.fill("#id_workspace_name", "Bright Smiles")
    page.fill("#id_email", "ann@bright.test")
    page.fill("#id_password", "correct-horse-42")
    page.click("button[type=submit]")
    expect(page.locator("#get-started")).to_be_visible()

    # Phone Numbers → Connect Your Carrier → SIP Trunk.
    page.click("nav >> text=Phone Numbers")
    page.click("#connect-your-carrier")
    shot(page, "0-connect-your-carrier")
    page.click("#choose-sip-trunk")
    expect(page.locator("h1")).to_have_text("SIP Trunk – Connect your PBX")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    # Pick 3CX: its defaults and its notes arrive by htmx.
    page.select_option("#id_pbx_vendor", "3cx")
    notes = page.locator("#vendor-notes[data-vendor='3cx']")
    expect(notes).to_contain_text("v18 or later (v20 recommended)")
    expect(notes).to_contain_text("StartUP Pro")
    expect(notes).to_contain_text("Generic VoIP Provider")
    expect(notes).to_contain_text("Leave Main Trunk No. blank")
    expect(page.locator("#id_codec_preset")).to_have_value("PCMU,PCMA")
    shot(page, "1-pbx-3cx")

    # Trunk Name and a bad PBX SIP Domain: an inline error, no reload.
    page.fill("#id_name", "Head office")
    page.fill("#id_pbx_domain", "pbx_bright..test")
    page.locator("#id_pbx_domain").blur()
    expect(page.locator("#feedback-pbx_domain .error")).to_contain_text("not a valid hostname or IP address")
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "2-inline-error")

    # Advanced Settings are collapsed until opened.
    expect(page.locator("#id_max_concurrent_calls")).to_be_hidden()
    page.click("#advanced summary")
    expect(page.locator("#id_max_concurrent_calls")).to_be_visible()
    expect(page.locator("#id_max_concurrent_calls")).to_have_value("10")
    expect(page.locator("#id_codec_preset option[disabled]")).to_contain_text("G.729")
    shot(page, "3-advanced")

    # Fix the domain and Create: the success screen replaces the wizard without a reload.
    page.fill("#id_pbx_domain", "pbx.bright.test")
    page.locator("#id_pbx_domain").blur()
    expect(page.locator("#feedback-pbx_domain")).to_be_empty()
    page.click("#create-trunk")
    expect(page.locator("h1")).to_have_text("Trunk “Head office” created")
    assert page.evaluate("window.__sameDocument") is True
    trunk = SipTrunk.objects.get(name="Head office")
    expect(page).to_have_url(re.compile(rf"/trunks/{trunk.pk}/connection/$"))
    password = page.locator("#conn-auth-password").inner_text()
    assert len(password) == 24
    expect(page.locator("#conn-auth-username")).to_have_text(trunk.auth_username)
    expect(page.locator("#pbx-steps")).to_contain_text("Number of SIM Calls: 10")
    expect(page.locator("#registration")).to_contain_text("Waiting for your PBX to register…")
    shot(page, "4-success")

    # Copy buttons put the value on the clipboard and say so.
    page.click("button[data-copy='#conn-auth-password']")
    expect(page.locator("button[data-copy='#conn-auth-password']")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == password
    page.click("button[data-copy='#conn-registrar']")
    assert page.evaluate("navigator.clipboard.readText()") == page.locator("#conn-registrar").inner_text()

    # The engine reports a failed REGISTER, then a successful one (simulated through the ORM).
    now = timezone.now()
    TrunkEvent.objects.create(
        tenant=trunk.tenant,
        trunk=trunk,
        kind="auth_failed",
        at=now,
        detail={"reason": "wrong_password", "source": "203.0.113.10:5060", "transport": "udp"},
    )
    expect(page.locator("#registration")).to_contain_text("Rejected: wrong password")
    TrunkStatus.objects.filter(trunk=trunk).update(
        state="registered",
        source="203.0.113.10:5060",
        transport="udp",
        user_agent="3CXPhoneSystem 20.0.1",
        registered_at=now,
        last_register_at=now,
    )
    expect(page.locator("#registration[data-state=registered]")).to_contain_text("Your PBX is connected")
    shot(page, "5-registered")

    # Add a DID on the trunk's page.
    page.goto(f"/trunks/{trunk.pk}/")
    add_did_on_trunk_page(page, expect, trunk, "+1 (415) 555-0100", "+14155550100")
    shot(page, "6-did")

    # Agent Studio → New agent → Telephony tab → pick the trunk → Save.
    link_new_agent(
        page,
        expect,
        trunk,
        name="Reception",
        first_message="Thanks for calling Bright Smiles, how can I help?",
    )
    shot(page, "7-agent-linked")
