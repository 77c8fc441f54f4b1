"""Settings → PBX in a real browser (Debian's Chromium): upload the guide's CSV, preview, commit,
search, try a phrase, and an inline error. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.db import connection, connections
from django.test import Client

from extensions.models import Extension

from .conftest import GUIDE_CSV, make_trunk

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
def page(live_server, owner):
    ARTIFACTS.mkdir(exist_ok=True)
    # Log in through Django and hand the session cookie to the browser.
    client = Client()
    client.force_login(owner)
    session = client.cookies["sessionid"].value
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 1000})
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield page
        page.goto("about:blank")  # stop any htmx polling before the server goes away
        context.close()
        browser.close()
        # ORM calls made while Playwright's sync API runs get a connection of their own context.
        connections.close_all()
    _wait_for_server_threads_to_disconnect()


def _wait_for_server_threads_to_disconnect(seconds: float = 3.0) -> None:
    """The live server's request threads close their connections when the browser's keep-alive
    sockets close; give them that moment, or dropping the test database races them."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"extensions-{name}.png"), full_page=True)


def test_upload_preview_commit_search_and_try(page, tenant, tmp_path):
    expect = playwright_sync.expect
    trunk = make_trunk(tenant)
    csv_file = tmp_path / "guide.csv"
    csv_file.write_bytes(GUIDE_CSV.encode())

    page.goto("/settings/pbx/")
    expect(page.locator("#pbx-trunks")).to_contain_text("Main office")
    page.get_by_role("link", name="Main office").click()
    expect(page.get_by_role("heading", name="Extensions on Main office")).to_be_visible()
    expect(page.locator("#extensions")).to_contain_text("No extensions yet")

    # Upload → preview: nothing changes yet.
    page.locator("#id_file").set_input_files(str(csv_file))
    page.get_by_text("Add and update").check()
    page.get_by_role("button", name="Preview import").click()
    expect(page.locator("#count-created")).to_have_text("2")
    expect(page.locator("#import-changes")).to_contain_text("Sarah Jones")
    shot(page, "1-preview")
    assert Extension.objects.count() == 0

    # Commit (htmx swaps the result in); the button is disabled while the request runs.
    page.get_by_role("button", name="Import 2 changes").click()
    expect(page.locator("#import-done")).to_have_text("Imported")
    expect(page.locator("#count-created")).to_have_text("2")
    shot(page, "2-committed")
    assert sorted(Extension.objects.values_list("number", flat=True)) == ["101", "102"]

    # Search as you type (htmx), then Try it.
    page.get_by_role("link", name="Back to the directory").click()
    page.locator("#search").fill("sarah")
    expect(page.locator("#extensions tbody tr")).to_have_count(1)
    expect(page.locator("#extensions")).to_contain_text("Sarah Jones")
    page.locator("#phrase").fill("extension one oh two")
    page.locator("#try-it").get_by_role("button", name="Try").click()
    expect(page.locator("#try-results")).to_contain_text("Transfers to 102 · Support")
    page.locator("#phrase").fill("can I talk to Sara in sales")
    page.locator("#try-it").get_by_role("button", name="Try").click()
    expect(page.locator("#try-results")).to_contain_text("Transfers to 101 · Sales")
    shot(page, "3-search-and-try")

    # An inline error without a reload: the number is taken.
    page.locator("#add-number-new").fill("101")
    page.locator("#add-display_name-new").fill("Duplicate")
    page.get_by_role("button", name="Add extension").click()
    expect(page.locator("#add-extension .errorlist")).to_contain_text("Extension 101 already exists")
    shot(page, "4-inline-error")
    assert Extension.objects.filter(trunk=trunk).count() == 2
