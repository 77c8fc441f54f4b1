"""The call pages in a real browser (Debian's Chromium): the list, filtering by trunk without a
reload (htmx), and a call's detail. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from calls.tests.conftest import make_trunk, record_call
from conftest import PASSWORD

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


def test_calls_list_filter_and_detail(live_server, tenant, owner):
    expect = playwright_sync.expect
    main = make_trunk(tenant, "Main PBX")
    branch = make_trunk(tenant, "Branch PBX")
    transferred = record_call(main)
    record_call(branch, caller="+27829990000", outcome="caller_hung_up", transfer_status=486, target="101")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=live_server.url)
        page.set_default_timeout(10_000)
        try:
            page.goto("/login/")
            page.fill("#id_username", owner.email)
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.goto("/calls/")
            rows = page.locator("#call-table tbody tr")
            expect(rows).to_have_count(2)
            expect(page.locator("tr[data-outcome=transfer_failed]")).to_contain_text("+27829990000")
            page.screenshot(path=str(ARTIFACTS / "calls-list.png"), full_page=True)
            page.select_option("#trunk", str(main.pk))  # htmx swaps the rows in place
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("+27825550123")
            assert f"trunk={main.pk}" in page.url
            rows.first.locator("a").click()
            expect(page.locator("#outcome")).to_have_text("Transferred")
            expect(page.locator("#understood-text")).to_have_text("John Smith please")
            expect(page.locator("#transfer-status")).to_contain_text("200")
            assert page.url.endswith(f"/calls/{transferred.pk}/")
            page.screenshot(path=str(ARTIFACTS / "calls-detail.png"), full_page=True)
        finally:
            page.goto("about:blank")
            browser.close()
