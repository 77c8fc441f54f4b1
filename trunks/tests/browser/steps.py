"""Page steps that several browser tests walk the same way (the guide's last two set-up steps)."""

from __future__ import annotations

from smartalex.agents.models import Agent
from trunks.models import Did, SipTrunk


def add_did_on_trunk_page(page, expect, trunk: SipTrunk, typed: str, stored: str) -> None:
    """On the trunk's page: the "no DID" problem shows, the DID is added, the problem goes."""
    expect(page.locator("[data-problem=no_did]")).to_be_visible()
    page.fill("#id_number", typed)
    page.click("#did-add-form button[type=submit]")
    expect(page.locator("#did-table")).to_contain_text(stored)
    expect(page.locator("[data-problem=no_did]")).to_have_count(0)
    assert Did.objects.filter(trunk=trunk, number=stored).exists()


def link_new_agent(page, expect, trunk: SipTrunk, *, name: str, first_message: str) -> None:
    """Agent Studio → New agent → Telephony tab → the trunk → Save."""
    page.click("nav >> text=Agent Studio")
    page.click("#new-agent")
    page.fill("#id_name", name)
    page.fill("#id_first_message", first_message)
    page.click("#save-agent")
    expect(page.locator("#telephony-tab[aria-current=page]")).to_be_visible()
    page.select_option("#id_trunk", str(trunk.pk))
    page.click("#save-telephony")
    expect(page.locator("#telephony-panel")).to_contain_text(f"answers calls on trunk “{trunk.name}”")
    assert Agent.objects.get(name=name).trunk_id == trunk.pk
