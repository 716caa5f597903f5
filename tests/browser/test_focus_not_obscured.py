"""Focus Not Obscured (WCAG 2.2 SC 2.4.11): while the bar shows, whatever gets focus on the page stays in sight."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import LAYOUT_SHIFT

VIEWPORTS = [{"width": 1280, "height": 1024}, {"width": 412, "height": 823}]
# The page's own focusable elements, also inside other shadow roots (the video placeholder), never the banner's.
PAGE_FOCUSABLES = """() => {
    const found = [];
    const visit = (root) => {
        for (const node of root.querySelectorAll('a[href], button, input, select, textarea, iframe, [tabindex]')) {
            const shown = node.getClientRects().length;
            if (!node.closest('#consent-banner') && !node.disabled && node.tabIndex >= 0 && shown) found.push(node);
        }
        for (const host of root.querySelectorAll('*')) {
            if (host.shadowRoot && host.id !== 'consent-banner') visit(host.shadowRoot);
        }
    };
    visit(document);
    return found.length;
}"""
# What has focus (inside shadow roots too), and whether the topmost element at its centre is it or inside it.
FOCUSED_IN_SIGHT = """() => {
    let a = document.activeElement;
    while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
    if (!a || a === document.body || a.closest('#consent-banner') || a.getRootNode().host?.id === 'consent-banner')
        return null;
    const box = a.getBoundingClientRect();
    const x = box.left + box.width / 2, y = box.top + box.height / 2;
    let hit = document.elementFromPoint(x, y);
    while (hit && hit.shadowRoot) {
        const inner = hit.shadowRoot.elementFromPoint(x, y);
        if (!inner || inner === hit) break;
        hit = inner;
    }
    const name = (a.textContent || a.getAttribute('title') || a.tagName).trim().slice(0, 40);
    const where = Math.round(box.left + scrollX) + ',' + Math.round(box.top + scrollY);
    const banner = hit && hit.getRootNode().host?.id === 'consent-banner';
    return {name: name, key: a.tagName + ':' + name + ':' + where, inSight: !!hit && a.contains(hit),
            hit: hit ? hit.tagName + (banner ? ' of the banner' : '') : null};
}"""


@pytest.fixture(params=VIEWPORTS, ids=lambda v: f"{v['width']}x{v['height']}")
def sized_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=request.param, locale="en-GB")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def open_demo(page: Page, service: Any) -> None:
    page.add_init_script(LAYOUT_SHIFT)
    page.goto(f"{service.url}/demo")
    expect(page.locator("#consent-banner section[role=dialog]")).to_be_visible()
    # The placeholder stands in for the video by now: its buttons are among the page's controls.
    expect(page.get_by_role("group", name="This content from YouTube needs consent for Functional.")).to_be_visible()


def test_every_focusable_page_element_is_in_sight_when_tabbed_to_with_the_bar_shown(
    sized_page: Page, service: Any
) -> None:
    page = sized_page
    open_demo(page, service)
    expected = page.evaluate(PAGE_FOCUSABLES)
    assert expected >= 12  # brand, three nav links, four basket buttons, two placeholder buttons, three at the end
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(3 * expected + 10):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_IN_SIGHT)
        if focused is not None:
            assert focused["inSight"], f"{focused['name']!r} has focus under {focused['hit']}"
            seen[focused["key"]] = focused
        if len(seen) == expected:
            break
    assert len(seen) == expected, sorted(seen)
    assert {"Cookie settings", "Withdraw consent", "Cookie declaration"} <= {f["name"] for f in seen.values()}
    expect(page.locator("#consent-banner section[role=dialog]")).to_be_visible()
    assert page.evaluate("window.__shift") == 0


def test_cookie_settings_and_withdraw_on_the_page_work_while_the_bar_shows(sized_page: Page, service: Any) -> None:
    page = sized_page
    open_demo(page, service)
    # A real click at the button's centre: Playwright refuses to click when another element is on top.
    page.get_by_role("button", name="Cookie settings").click()
    expect(page.locator("#consent-banner dialog")).to_be_visible()
    assert page.evaluate("consent.get()") is None
    page.keyboard.press("Escape")
    expect(page.locator("#consent-banner section[role=dialog]")).to_be_visible()
    page.get_by_role("button", name="Withdraw consent").click()
    page.wait_for_function("() => consent.get() !== null")
    assert page.evaluate("consent.get()") == {
        "necessary": True, "functional": False, "analytics": False, "advertising": False,
    }  # fmt: skip
    expect(page.locator("#consent-banner section[role=dialog]")).to_be_hidden()


def test_the_room_made_for_the_bar_goes_with_it(sized_page: Page, service: Any) -> None:
    page = sized_page
    open_demo(page, service)
    padding = page.evaluate("getComputedStyle(document.documentElement).scrollPaddingBottom")
    bar = page.evaluate("document.getElementById('consent-banner').shadowRoot.querySelector('section').offsetHeight")
    assert padding == f"{bar}px"
    page.locator("#consent-banner section button[data-action=reject]").click()
    expect(page.locator("#consent-banner section[role=dialog]")).to_be_hidden()
    page.wait_for_function("() => document.documentElement.style.scrollPaddingBottom === ''")
    assert page.evaluate("document.getElementById('consent-banner').offsetHeight") == 0


def test_the_demo_page_has_a_favicon_and_a_description(page: Page, service: Any) -> None:
    page.goto(f"{service.url}/demo")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon is not None
    response = page.request.get(f"{service.url}{icon}" if icon.startswith("/") else icon)
    assert response.ok and response.headers["content-type"].startswith("image/svg+xml")
    description = page.locator("meta[name=description]").get_attribute("content")
    assert description and len(description) > 40
