"""Blocked scripts run in document order once their category is granted, never before, never after a refusal."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser import Shop

NONCE = "r4nd0m-n0nce"


def _ordered_scripts(shop: Shop) -> str:
    """An external slow script, an inline one with a nonce, a fast external one, and one of another category."""
    slow = f"{shop.pages.site.origin()}/slow.js"
    return (
        "<main><h1>Shop</h1></main>"
        f'<script type="text/plain" data-consent="analytics" src="{slow}?first"></script>'
        f'<script type="text/plain" data-consent="analytics" nonce="{NONCE}">'
        "(window.ran = window.ran || []).push('inline');</script>"
        f'<script type="text/plain" data-consent="analytics" src="{slow}?third"></script>'
        f'<script type="text/plain" data-consent="advertising" src="{slow}?advertising"></script>'
    )


def _csp_with_nonce(shop: Shop) -> str:
    return shop.pages.strict_csp(f" {shop.pages.site.origin()} 'nonce-{NONCE}'")


def test_scripts_wait_for_consent_then_run_in_document_order_with_their_nonce(shop: Shop) -> None:
    page = shop.visit(_ordered_scripts(shop), csp=_csp_with_nonce(shop))
    page.wait_for_timeout(500)
    assert page.evaluate("window.ran") is None
    shop.click("customise")
    shop.preferences.get_by_role("switch", name="Analytics").check()
    shop.click("save", "preferences")
    page.wait_for_function("() => (window.ran || []).length >= 3")
    page.wait_for_timeout(400)
    assert page.evaluate("window.ran") == ["first", "inline", "third"]


def test_scripts_never_run_after_a_refusal_even_when_added_later(shop: Shop) -> None:
    page = shop.visit(_ordered_scripts(shop), csp=_csp_with_nonce(shop))
    shop.click("reject")
    page.evaluate(
        """src => { const s = document.createElement('script');
        s.type = 'text/plain'; s.dataset.consent = 'analytics'; s.src = src + '?late';
        document.body.append(s); }""",
        f"{shop.pages.site.origin()}/slow.js",
    )
    page.wait_for_timeout(800)
    assert page.evaluate("window.ran") is None


def test_scripts_added_after_consent_run_too(shop: Shop) -> None:
    page = shop.visit(_ordered_scripts(shop), csp=_csp_with_nonce(shop))
    shop.click("accept")
    page.wait_for_function("() => (window.ran || []).length >= 4")
    page.evaluate(
        """src => { const s = document.createElement('script');
        s.type = 'text/plain'; s.dataset.consent = 'analytics'; s.src = src + '?late';
        document.body.append(s); }""",
        f"{shop.pages.site.origin()}/slow.js",
    )
    page.wait_for_function("() => window.ran.includes('late')")
    assert page.evaluate("window.ran") == ["first", "inline", "third", "advertising", "late"]


def test_stored_consent_runs_granted_scripts_on_the_next_page_without_a_click(shop: Shop) -> None:
    shop.visit()
    shop.click("customise")
    shop.preferences.get_by_role("switch", name="Advertising").check()
    shop.click("save", "preferences")
    page = shop.visit(_ordered_scripts(shop), csp=_csp_with_nonce(shop))
    expect(shop.banner).to_have_count(0)
    page.wait_for_function("() => (window.ran || []).length >= 1")
    page.wait_for_timeout(400)
    assert page.evaluate("window.ran") == ["advertising"]
