"""A refusal holds across revisions that add no purpose, for reask_after_refusal_days; a consent does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from tests.support.browser import Shop
from tests.support.regional_pages import visit

REFUSED = {"necessary": True, "functional": False, "analytics": False, "advertising": False}


def _refuse(shop: Shop) -> None:
    """Reject all on ``world`` (revision 1) and wait until the record is stored."""
    visit(shop)
    shop.click("reject")
    shop.wait_for_records(1, "world")
    shop.page.wait_for_function("() => consent.id !== null")


def _age(shop: Shop, days: int) -> None:
    """Make the stored choice ``days`` old, as if it had been given then (the cookie's documented format)."""
    cookie = shop.cookie()
    assert cookie is not None
    fields = dict(part.split(":", 1) for part in cookie["value"].split("|"))
    fields["given"] = (
        (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    value = "|".join(f"{key}:{value}" for key, value in fields.items())
    shop.page.context.add_cookies([{"name": "consent", "value": value, "url": shop.pages.site.origin()}])


def test_a_refusal_is_not_asked_again_after_a_revision_that_adds_nothing(shop: Shop, visitor_from: Any) -> None:
    visitor_from("DE")
    _refuse(shop)
    page = visit(shop, site="world-r2")
    page.wait_for_timeout(300)
    expect(shop.banner).to_be_hidden()
    assert page.evaluate("consent.get()") == REFUSED
    assert page.evaluate("window.ran || []") == []
    assert shop.records("world-r2") == []


def test_a_revision_that_adds_a_purpose_asks_again(shop: Shop, visitor_from: Any) -> None:
    visitor_from("DE")
    _refuse(shop)
    page = visit(shop, site="world-r3")
    expect(shop.banner).to_be_visible()
    assert page.evaluate("consent.get()") is None


def test_a_consent_is_asked_again_on_any_new_revision(shop: Shop, visitor_from: Any) -> None:
    visitor_from("DE")
    visit(shop)
    shop.click("accept")
    shop.wait_for_records(1, "world")
    visit(shop, site="world-r2")
    expect(shop.banner).to_be_visible()


def test_an_opt_out_is_a_refusal_that_holds_too(shop: Shop, visitor_from: Any) -> None:
    visitor_from("US-CA")
    visit(shop)
    shop.click("opt-out")
    shop.wait_for_records(1, "world")
    page = visit(shop, site="world-r2")
    page.wait_for_function("() => (window.ran || []).length === 2")
    page.wait_for_timeout(300)
    expect(shop.banner).to_be_hidden()
    assert page.evaluate("window.ran") == ["functional", "analytics"]


def test_a_refusal_lasts_reask_days_then_lapses(shop: Shop, visitor_from: Any) -> None:
    visitor_from("DE")
    _refuse(shop)
    # 200 days: past world's 180 (reask and max age), within world-r2's 365.
    _age(shop, 200)
    visit(shop, site="world-r2")
    shop.page.wait_for_timeout(300)
    expect(shop.banner).to_be_hidden()
    visit(shop)
    expect(shop.banner).to_be_visible()
    _age(shop, 400)
    visit(shop, site="world-r2")
    expect(shop.banner).to_be_visible()
