"""Issue #5, "Done means", tried as a new customer would: sign up, create a trunk through the
wizard, copy the connection details off the success screen into a PBX (sipp), watch the screen
show the REGISTER attempts and flip to Registered without a reload, add a DID, link an agent.

The PBX is sipp, registering with exactly what the copy buttons gave, to a real engine; the
status reaches the page through a real Celery worker. Screenshots: test-artifacts/customer-*.png.
"""

from __future__ import annotations

import re
import time

from django.conf import settings

from trunks.models import SipTrunk

from .peers import expect, needs_peers, shot, sipp_output, wait_until_engine_knows
from .steps import add_did_on_trunk_page, link_new_agent

pytestmark = needs_peers

WRONG_PASSWORD = "not-the-password-shown-0"


def copied(page, key: str) -> str:
    """What the row's copy button puts on the clipboard: what a customer pastes into the PBX."""
    button = page.locator(f"#row-{key} button.copy")
    button.click()
    expect(button).to_have_text("Copied")
    return page.evaluate("navigator.clipboard.readText()")


def test_new_customer_connects_a_pbx_that_registers_with_the_shown_credentials(
    new_page, engine, pbx, record_property
):
    page = new_page()

    # Sign up: a fresh workspace, and its Owner.
    page.goto("/signup/")
    page.fill("#id_workspace_name", "Harbour Vets")
    page.fill("#id_email", "maria@harbour-vets.test")
    page.fill("#id_password", "correct-horse-42")
    page.click("button[type=submit]")
    expect(page.locator("#get-started")).to_be_visible()
    shot(page, "customer-0-signed-up")

    # Phone Numbers → Connect Your Carrier → SIP Trunk.
    page.click("nav >> text=Phone Numbers")
    page.click("#connect-your-carrier")
    page.click("#choose-sip-trunk")
    expect(page.locator("h1")).to_have_text("SIP Trunk – Connect your PBX")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    page.select_option("#id_pbx_vendor", "freepbx")
    expect(page.locator("#vendor-notes[data-vendor='freepbx']")).to_be_visible()
    page.fill("#id_name", "Surgery PBX")
    page.fill("#id_pbx_domain", "pbx.harbour-vets.test")
    page.locator("#id_pbx_domain").blur()
    expect(page.locator("#feedback-pbx_domain")).to_be_empty()
    shot(page, "customer-1-wizard-filled")
    page.click("#create-trunk")
    expect(page.locator("h1")).to_have_text("Trunk “Surgery PBX” created")
    expect(page.locator("#registration")).to_contain_text("Waiting for your PBX to register…")
    expect(page.locator("#no-attempts")).to_be_visible()

    # The connection details, as the copy buttons give them.
    details = {
        key: copied(page, key)
        for key in ("registrar", "outbound-proxy", "port", "transport", "auth-username", "auth-password")
    }
    assert details["registrar"] == details["outbound-proxy"] == settings.SIP_DOMAIN
    assert details["port"] == "5060"  # what the guide tells the customer; the test engine's port differs
    assert details["transport"] == "UDP"
    assert len(details["auth-password"]) == 24
    shot(page, "customer-2-success-screen")

    trunk = SipTrunk.objects.get(name="Surgery PBX")
    wait_until_engine_knows(engine, details["auth-username"])
    credentials = {
        "username": details["auth-username"],
        "registrar": details["registrar"],
        "transport": details["transport"],
    }

    # A typo in the password first: the panel shows the attempt and why it failed.
    failed = pbx.register(password=WRONG_PASSWORD, **credentials)
    assert failed.returncode != 0, sipp_output(failed)
    panel = page.locator("#registration")
    expect(panel.locator("tr.attempt.auth_failed")).to_contain_text("Rejected: wrong password")
    expect(panel).to_contain_text("Last failure: wrong password")
    expect(panel).to_have_attribute("data-state", "not_registered")
    shot(page, "customer-3-wrong-password")

    # The password pasted right: the same panel flips to Registered, no reload.
    started = time.monotonic()
    registered = pbx.register(password=details["auth-password"], **credentials)
    assert registered.returncode == 0, sipp_output(registered)
    # "Within a few seconds": the panel polls every second; 10 s leaves room for a loaded machine.
    expect(page.locator("#registration[data-state=registered]")).to_contain_text(
        "Your PBX is connected", timeout=10_000
    )
    seconds = time.monotonic() - started
    record_property("register_to_registered_panel_s", round(seconds, 2))
    print(f"\nsipp REGISTER → panel shows Registered: {seconds:.2f} s (wall clock, including sipp)")
    panel = page.locator("#registration")
    expect(panel).to_contain_text(f"Registered from 127.0.0.1:{pbx.port} over UDP")
    expect(panel).to_contain_text("PBX: SIPp walkthrough PBX")
    expect(panel.locator("tr.attempt.registered")).to_contain_text("Registered")
    expect(panel.locator("tr.attempt.auth_failed")).to_contain_text("Rejected: wrong password")
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "customer-4-registered")

    # Then, in SmartAlex: add the DID on the trunk's page.
    page.click("#next-steps >> text=Add your DIDs to this trunk")
    expect(page).to_have_url(re.compile(rf"/trunks/{trunk.pk}/"))
    add_did_on_trunk_page(page, expect, trunk, "+44 20 7946 0321", "+442079460321")
    shot(page, "customer-5-did")

    # Agent Studio → New agent → Telephony tab → the trunk → Save.
    link_new_agent(
        page, expect, trunk, name="Front desk", first_message="Harbour Vets, how can we help your pet today?"
    )
    shot(page, "customer-6-agent-linked")

    # The trunks list agrees: registered, with its DID.
    page.click("nav >> text=Trunks")
    row = page.locator("tr", has_text="Surgery PBX")
    expect(row).to_contain_text("Registered")
