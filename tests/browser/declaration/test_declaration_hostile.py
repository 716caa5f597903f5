"""An inventory whose texts carry <script> and <img onerror>: shown as text, never run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.declaration import PageServer, Service, privacy_page, start_service

INVENTORY = Path(__file__).resolve().parents[2] / "support" / "hostile.yaml"
SITE_NAME = "<script>window.__pwned = 'name'</script><img src=x onerror=\"window.__pwned = 'name-img'\">"
LABEL = "<script>window.__pwned = 'label'</script>Necessary"
DESCRIPTION = "<img src=x onerror=\"window.__pwned = 'description'\">Always on."
PURPOSE = "<img src=x onerror=\"window.__pwned = 'purpose'\">Keeps you signed in."
PROVIDER = "<img src=x onerror=\"window.__pwned = 'provider-img'\">Them"
TITLE = "<img src=x onerror=\"window.__pwned = 'title'\">Cookies"


@pytest.fixture(scope="module")
def hostile(pages: PageServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(INVENTORY, pages.origin, tmp_path_factory.mktemp("hostile"))
    yield running
    running.stop()


def assert_inert(page: Page) -> None:
    """Nothing from the inventory ran, even after a failed image would have fired its onerror."""
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_declaration_page_shows_markup_as_text(page: Page, hostile: Service) -> None:
    page.goto(f"{hostile.url}/s/hostile/cookies")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cookie policy · {SITE_NAME}")
    expect(page.get_by_role("heading", level=2).first).to_have_text(LABEL)
    expect(page.get_by_role("table").first.locator("caption")).to_have_text(LABEL)
    expect(page.get_by_role("rowheader", name="<b>bold</b>")).to_be_visible()
    expect(page.get_by_role("cell", name=PURPOSE)).to_be_visible()
    assert page.locator("main script, main img, main b").count() == 0
    assert_inert(page)


def test_widget_and_banner_show_markup_as_text(page: Page, pages: PageServer, hostile: Service) -> None:
    # No Content-Security-Policy on this page: only the escaping stands between the texts and the page.
    page.goto(privacy_page(pages, hostile, path="/hostile", csp=False))
    declaration = page.locator("#consent-declaration")
    expect(declaration.get_by_role("heading", name=LABEL)).to_be_visible()
    expect(declaration.get_by_text(DESCRIPTION)).to_be_visible()
    expect(declaration.get_by_role("rowheader", name="<b>bold</b>")).to_be_visible()
    expect(declaration.get_by_role("cell", name=PURPOSE)).to_be_visible()
    expect(declaration.get_by_role("cell", name=PROVIDER)).to_be_visible()
    assert declaration.locator("script, img, b").count() == 0

    # The banner's first layer, then its preferences with the cookie table.
    expect(page.get_by_text(TITLE)).to_be_visible()
    declaration.locator("[data-consent-action=change]").click()
    preferences = page.get_by_role("dialog")
    expect(preferences).to_be_visible()
    expect(preferences).to_contain_text(LABEL)
    expect(preferences).to_contain_text(PURPOSE)
    assert preferences.locator("script, img, b").count() == 0
    preferences.get_by_role("button", name="Save choices").click()
    expect(declaration.locator("[data-consent-status] dt").first).to_have_text(LABEL)
    assert_inert(page)

    # The check can fail: the same text inserted as markup does run.
    page.evaluate("html => document.body.insertAdjacentHTML('beforeend', html)", PURPOSE)
    page.wait_for_function("window.__pwned === 'purpose'", timeout=5000)
