"""Strict CSP: styles travel inside banner.js in an open shadow root. Theming and layout from the inventory."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser import Shop

VIOLATIONS = (
    "window.__violations = []; document.addEventListener('securitypolicyviolation',"
    " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def test_works_under_a_strict_content_security_policy(shop: Shop) -> None:
    shop.page.add_init_script(VIOLATIONS)
    analytics = f"{shop.service.url}/static/demo/analytics.js"
    page = shop.visit(
        f'<main>Shop</main><script type="text/plain" data-consent="analytics" src="{analytics}"></script>'
    )
    expect(shop.banner).to_be_visible()
    # Styled by the adopted stylesheet: fixed, and the default accent on the buttons.
    assert shop.banner.evaluate("layer => getComputedStyle(layer).position") == "fixed"
    accept = shop.banner.locator("button[data-action=accept]")
    assert accept.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(29, 78, 216)"
    shadow = page.evaluate(
        """() => { const root = document.getElementById('consent-banner').shadowRoot;
        return [root.mode, root.adoptedStyleSheets.length, root.querySelectorAll('style, [style]').length]; }"""
    )
    assert shadow == ["open", 1, 0]
    shop.click("accept")
    page.wait_for_function("() => window.demoAnalytics === true && consent.id !== null")
    assert len(shop.wait_for_records(1)) == 1
    assert page.evaluate("window.__violations") == []


def test_theme_follows_css_custom_properties(shop: Shop) -> None:
    theme = (
        "<style>#consent-banner { --consent-accent: #7c2d12; --consent-bg: #fef3c7; --consent-radius: 0px; }</style>"
    )
    shop.visit(head=theme, csp=None)
    accept = shop.banner.locator("button[data-action=accept]")
    assert accept.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(124, 45, 18)"
    assert accept.evaluate("b => getComputedStyle(b).borderTopLeftRadius") == "0px"
    assert shop.banner.evaluate("layer => getComputedStyle(layer).backgroundColor") == "rgb(254, 243, 199)"


def test_bar_layout_is_a_full_width_bottom_bar(shop: Shop) -> None:
    shop.visit()
    shop.banner.evaluate("layer => Promise.all(layer.getAnimations().map(a => a.finished))")
    box = shop.banner.bounding_box()
    assert box is not None
    assert (round(box["x"]), round(box["width"]), round(box["y"] + box["height"])) == (0, 1280, 800)


def test_box_layout_is_a_centred_box(shop: Shop) -> None:
    shop.visit(site="boxed")
    shop.banner.evaluate("layer => Promise.all(layer.getAnimations().map(a => a.finished))")
    box = shop.banner.bounding_box()
    assert box is not None
    assert abs(box["x"] + box["width"] / 2 - 640) <= 1 and abs(box["y"] + box["height"] / 2 - 400) <= 1
    assert box["width"] < 600
