"""Accessibility: dialogs named and described, focus kept and returned, visible focus, small screens, motion, axe."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.support.browser import AXE, Shop

OPENER = '<main><h1>Shop</h1><button type="button" data-consent-open>Cookie settings</button></main>'
DEEP_FOCUS = """() => { let a = document.activeElement;
    while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement; return a; }"""
IN_DIALOG = f"() => {{ const a = ({DEEP_FOCUS})(); return !!a && !!a.closest('dialog[open]'); }}"


def test_layers_are_dialogs_with_a_name_and_a_description(shop: Shop) -> None:
    shop.visit()
    first = shop.page.get_by_role("dialog", name="Cookies on this site")
    expect(first).to_be_visible()
    expect(first).to_have_accessible_description(
        "We use cookies to run this site and, with your consent, to remember preferences, "
        "measure visits and show ads. Cookie policy"
    )
    shop.click("customise")
    second = shop.page.get_by_role("dialog", name="Cookie preferences")
    expect(second).to_be_visible()
    expect(second).to_have_attribute("aria-describedby", "c-prefs-intro")


def test_focus_moves_into_preferences_stays_there_and_returns_on_escape(shop: Shop) -> None:
    page = shop.visit(OPENER)
    shop.click("accept")
    opener = page.get_by_role("button", name="Cookie settings")
    opener.focus()
    page.keyboard.press("Enter")
    expect(shop.preferences).to_be_visible()
    assert page.evaluate(IN_DIALOG)
    for key in ["Tab"] * 20 + ["Shift+Tab"] * 20:
        page.keyboard.press(key)
        assert page.evaluate(IN_DIALOG), f"focus left the preferences after {key}"
    page.keyboard.press("Escape")
    expect(shop.preferences).to_be_hidden()
    expect(opener).to_be_focused()


def test_escape_without_a_choice_returns_to_the_first_layer(shop: Shop) -> None:
    page = shop.visit()
    shop.banner.locator("button[data-action=customise]").focus()
    page.keyboard.press("Enter")
    expect(shop.preferences).to_be_visible()
    page.keyboard.press("Escape")
    expect(shop.banner).to_be_visible()
    assert page.evaluate(f"({DEEP_FOCUS})().dataset.action") == "customise"
    assert page.evaluate("consent.get()") is None


def test_keyboard_focus_is_visible(shop: Shop) -> None:
    page = shop.visit()
    shop.banner.locator("button[data-action=accept]").focus()
    page.keyboard.press("Tab")
    style = f"() => {{ const s = getComputedStyle(({DEEP_FOCUS})()); return [s.outlineStyle, s.outlineWidth]; }}"
    outline = page.evaluate(style)
    assert outline[0] != "none" and float(outline[1].removesuffix("px")) >= 2


def _usable(shop: Shop, width: int) -> None:
    page = shop.visit()
    expect(shop.banner).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for button in shop.banner.locator("button").all():
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    shop.click("customise")
    dialog = shop.preferences.bounding_box()
    assert dialog is not None and dialog["width"] <= width
    advertising = shop.preferences.get_by_role("switch", name="Advertising")
    advertising.scroll_into_view_if_needed()
    advertising.check()
    save = shop.preferences.locator("button[data-action=save]")
    expect(save).to_be_in_viewport()
    save.click()
    assert page.evaluate("consent.get().advertising") is True


def test_usable_on_a_320_px_wide_screen(browser: Browser, pages: Any) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 568})
    try:
        _usable(Shop(context.new_page(), pages, pages.service), 320)
    finally:
        context.close()


def test_usable_at_200_percent_zoom(browser: Browser, pages: Any) -> None:
    # A 1280 × 800 window at 200 % zoom lays out as 640 × 400 CSS pixels at twice the density.
    context = browser.new_context(viewport={"width": 640, "height": 400}, device_scale_factor=2)
    try:
        _usable(Shop(context.new_page(), pages, pages.service), 640)
    finally:
        context.close()


def test_honours_prefers_reduced_motion(browser: Browser, pages: Any) -> None:
    animations = []
    for motion in ("no-preference", "reduce"):
        context = browser.new_context(reduced_motion=motion)
        try:
            shop = Shop(context.new_page(), pages, pages.service)
            shop.visit()
            animations.append(shop.banner.evaluate("layer => getComputedStyle(layer).animationName"))
        finally:
            context.close()
    assert animations == ["c-in", "none"]


def _serious_violations(page: Page) -> list[tuple[str, str, list[Any]]]:
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_violation_on_the_demo_page_with_either_layer_open(browser: Browser, service: Any) -> None:
    assert AXE.is_file(), f"axe-core is missing at {AXE}: run .ci/install"
    # The demo page's CSP would refuse the injected axe script; the banner's own code runs as in production.
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(f"{service.url}/demo")
        page.wait_for_function("() => window.consent !== undefined")
        page.add_script_tag(path=str(AXE))
        expect(page.locator("#consent-banner section[role=dialog]")).to_be_visible()
        assert _serious_violations(page) == []
        page.locator("#consent-banner button[data-action=customise]").click()
        dialog = page.locator("#consent-banner dialog")
        expect(dialog.locator("details").first).to_be_attached()
        for summary in dialog.locator("summary").all():
            summary.click()
        assert _serious_violations(page) == []
    finally:
        context.close()
