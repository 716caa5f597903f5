"""Global Privacy Control through the request header alone and through the page alone, in opt-in and opt-out regions."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Shop
from tests.support.regional_pages import consent_updates, event, ran, visit

IN_PAGE = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
GPC_NOTE = "Your browser asks not to be tracked"
# How the signal reaches the service: (the Sec-GPC header, the page's navigator.globalPrivacyControl).
WAYS = {"header": (True, False), "page": (False, True)}


def _signal(shop: Shop, visitor_from: Any, where: str, way: str) -> None:
    header, in_page = WAYS[way]
    visitor_from(where, gpc=header)
    if in_page:
        shop.page.add_init_script(IN_PAGE)


@pytest.mark.parametrize("way", WAYS)
def test_gpc_in_an_opt_in_region_refuses_advertising_by_default(shop: Shop, visitor_from: Any, way: str) -> None:
    _signal(shop, visitor_from, "DE", way)
    page = visit(shop)
    # Chromium has no navigator.globalPrivacyControl of its own: the header alone must do it.
    assert page.evaluate("navigator.globalPrivacyControl === true") is (way == "page")
    expect(shop.banner).to_contain_text(GPC_NOTE)
    shop.click("accept")
    page.wait_for_function("() => (window.ran || []).length === 2")
    page.wait_for_timeout(200)
    assert ran(page) == ["functional", "analytics"]
    (record,) = shop.wait_for_records(1, "world")
    assert (record["action"], record["functional"], record["analytics"], record["advertising"]) == (
        "accept_all",
        1,
        1,
        0,
    )
    assert (record["regime"], record["gpc"], record["sec_gpc"]) == ("opt-in", 1, int(way == "header"))


@pytest.mark.parametrize("way", WAYS)
def test_gpc_in_an_opt_out_region_is_an_opt_out_recorded_once(shop: Shop, visitor_from: Any, way: str) -> None:
    _signal(shop, visitor_from, "US-CA", way)
    page = visit(shop)
    page.wait_for_function("() => (window.ran || []).length === 2")
    assert ran(page) == ["functional", "analytics"]
    assert consent_updates(page) == [event("opt-out", functional=True, analytics=True, advertising=False)]
    (record,) = shop.wait_for_records(1, "world")
    assert (record["action"], record["functional"], record["analytics"], record["advertising"]) == ("opt_out", 1, 1, 0)
    assert (record["regime"], record["region"], record["gpc"], record["sec_gpc"]) == (
        "opt-out",
        "US-CA",
        1,
        int(way == "header"),
    )
    page.wait_for_function("() => consent.id !== null")
    # Opted out without a click: nothing to ask.
    expect(shop.banner).to_be_hidden()

    page = visit(shop)
    page.wait_for_function("() => (window.ran || []).length === 2")
    page.wait_for_timeout(500)
    expect(shop.banner).to_be_hidden()
    assert ran(page) == ["functional", "analytics"]
    assert len(shop.records("world")) == 1
