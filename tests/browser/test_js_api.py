"""The JS API on window.consent and the consent:change event."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser import Shop

LISTEN = """() => { window.seen = []; consent.on('change', c => window.seen.push(['on', c]));
    document.addEventListener('consent:change', e => window.seen.push(['event', e.detail])); }"""


def test_api_is_frozen_and_empty_before_a_choice(shop: Shop) -> None:
    page = shop.visit()
    assert page.evaluate("Object.isFrozen(window.consent)") is True
    assert page.evaluate("[consent.get(), consent.id, consent.date, consent.receipt]") == [None, None, None, None]
    page.evaluate("window.consent.get = null")
    assert page.evaluate("typeof consent.get") == "function"


def test_a_choice_fires_change_and_fills_id_date_and_receipt(shop: Shop) -> None:
    page = shop.visit()
    page.evaluate(LISTEN)
    shop.click("customise")
    shop.preferences.get_by_role("switch", name="Analytics").check()
    shop.click("save", "preferences")
    choices = {"necessary": True, "functional": False, "analytics": True, "advertising": False}
    assert page.evaluate("window.seen") == [["on", choices], ["event", choices]]
    assert page.evaluate("consent.get()") == choices
    page.wait_for_function("() => consent.receipt !== null")
    (record,) = shop.wait_for_records(1)
    assert page.evaluate("consent.id") == record["consent_id"]
    assert page.evaluate("consent.date").startswith(record["recorded_at"][:10])
    assert shop.service.history(record["consent_id"], receipt=page.evaluate("consent.receipt"))["records"]


def test_open_shows_preferences(shop: Shop) -> None:
    page = shop.visit()
    page.evaluate("consent.open()")
    expect(shop.preferences).to_be_visible()


def test_withdraw_records_refuses_everything_and_fires_change(shop: Shop) -> None:
    page = shop.visit()
    shop.click("accept")
    page.wait_for_function("() => consent.id !== null")
    page.evaluate(LISTEN)
    page.evaluate("document.cookie = '_ga_TEST=1; Path=/'")
    page.evaluate("consent.withdraw()")
    refused = {"necessary": True, "functional": False, "analytics": False, "advertising": False}
    assert page.evaluate("window.seen") == [["on", refused], ["event", refused]]
    assert "_ga_TEST" not in page.evaluate("document.cookie")
    records = shop.wait_for_records(2)
    assert [(r["action"], r["functional"], r["analytics"], r["advertising"]) for r in records] == [
        ("accept_all", 1, 1, 1),
        ("withdraw", 0, 0, 0),
    ]


def test_a_page_element_with_id_consent_does_not_stop_the_banner(shop: Shop) -> None:
    # Browsers expose an element with id="consent" as window.consent until the banner replaces it.
    page = shop.visit('<main><div id="consent">Terms of consent</div></main>')
    expect(shop.banner).to_be_visible()
    assert page.evaluate("typeof consent.get") == "function"
