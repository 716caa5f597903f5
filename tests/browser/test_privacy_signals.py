"""Global Privacy Control and Do Not Track: advertising starts refused, the banner says so, an explicit toggle wins."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import Shop

SIGNALS = {
    "gpc": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
    "dnt": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
}
NOTICE = "Your browser asks not to be tracked"


@pytest.mark.parametrize("signal", ["gpc", "dnt"])
def test_accept_all_grants_all_but_advertising_and_says_why(shop: Shop, signal: str) -> None:
    shop.page.add_init_script(SIGNALS[signal])
    shop.visit()
    expect(shop.banner).to_contain_text(NOTICE)
    shop.click("accept")
    shop.page.wait_for_function("() => consent.id !== null")
    (record,) = shop.wait_for_records(1)
    assert (record["action"], record["functional"], record["analytics"], record["advertising"]) == (
        "accept_all",
        1,
        1,
        0,
    )
    assert (record["gpc"], record["dnt"]) == ((1, 0) if signal == "gpc" else (0, 1))


def test_second_layer_explains_and_an_explicit_advertising_toggle_wins(shop: Shop) -> None:
    shop.page.add_init_script(SIGNALS["gpc"])
    shop.visit()
    shop.click("customise")
    advertising = shop.preferences.locator("[data-category=advertising]")
    expect(advertising).to_contain_text(NOTICE)
    advertising.get_by_role("switch").check()
    shop.click("save", "preferences")
    shop.page.wait_for_function("() => consent.id !== null")
    (record,) = shop.wait_for_records(1)
    assert (record["action"], record["advertising"], record["gpc"]) == ("custom", 1, 1)


def test_without_a_signal_accept_all_grants_advertising_and_no_notice_shows(shop: Shop) -> None:
    shop.visit()
    expect(shop.banner).not_to_contain_text(NOTICE)
    shop.click("accept")
    assert shop.page.evaluate("consent.get().advertising") is True
