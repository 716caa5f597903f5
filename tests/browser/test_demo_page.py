"""The /demo shop: the banner embedded as a third-party site would, its trackers behind consent; no layout shift."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.support.browser import LAYOUT_SHIFT


def test_demo_shop_runs_its_trackers_only_after_consent_and_deletes_their_cookies_on_withdrawal(
    page: Page, service: Any
) -> None:
    response = page.goto(f"{service.url}/demo")
    assert response is not None
    assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
    page.wait_for_function("() => window.consent !== undefined")
    status = page.locator("[data-demo-status=analytics]")
    expect(status).to_have_text("waiting for consent")
    expect(page.get_by_role("group", name="This content from YouTube needs consent for Functional.")).to_be_visible()
    page.locator("#consent-banner section button[data-action=accept]").click()
    expect(status).to_contain_text("running")
    expect(page.locator("[data-demo-status=advertising]")).to_contain_text("running")
    expect(page.locator("[data-demo-status=inline]")).to_have_text("ran after analytics consent")
    assert page.locator("iframe").get_attribute("src") == "https://www.youtube-nocookie.com/embed/aqz-KE-bpKQ"
    names = {c["name"] for c in page.context.cookies()}
    assert {"_ga", "_gid", "_hjSession_1234", "_fbp", "_gcl_au", "consent"} <= names
    page.wait_for_function("() => consent.id !== null")
    # By keyboard: after a scroll, Chromium may still route a mouse click to the failed YouTube frame's old place.
    page.get_by_role("button", name="Withdraw consent").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => consent.get().analytics === false")
    assert {c["name"] for c in page.context.cookies()} == {"consent"}
    expect(page.locator("[data-demo-status=choice]")).to_have_text("necessary")


def test_banner_and_video_placeholder_cause_no_layout_shift(page: Page, service: Any) -> None:
    page.add_init_script(LAYOUT_SHIFT)
    page.goto(f"{service.url}/demo")
    expect(page.locator("#consent-banner section[role=dialog]")).to_be_visible()
    page.wait_for_timeout(300)
    page.locator("#consent-banner section button[data-action=customise]").click()
    page.keyboard.press("Escape")
    below = page.locator("[data-demo-status=analytics]")
    before = below.bounding_box()
    assert before is not None
    page.locator("#consent-banner section button[data-action=accept]").click()
    expect(below).to_contain_text("running")
    page.wait_for_timeout(300)
    # The video replaces its placeholder in the same box: nothing below it moves.
    after = below.bounding_box()
    assert after is not None and after["y"] == before["y"]
    assert page.evaluate("window.__shift") == 0
