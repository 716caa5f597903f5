"""Delivery: the page never waits; an undeliverable record waits in localStorage and is re-sent, once."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.support.browser import Shop

QUEUE = "consent.pending.demo"


def test_record_made_offline_waits_in_local_storage_and_lands_on_the_next_page(shop: Shop) -> None:
    page = shop.visit()
    page.context.set_offline(True)
    shop.click("accept")
    # The page goes on at once: the banner is gone and the choice applies, though nothing was delivered.
    expect(shop.banner).to_be_hidden()
    assert page.evaluate("consent.get().analytics") is True
    page.wait_for_timeout(300)
    waiting = json.loads(page.evaluate(f"localStorage.getItem({QUEUE!r})"))
    assert [r["action"] for r in waiting] == ["accept_all"]
    assert page.evaluate("consent.id") is None
    assert shop.records() == []
    page.context.set_offline(False)
    shop.visit()
    page.wait_for_function("() => consent.id !== null")
    (record,) = shop.wait_for_records(1)
    assert record["event_id"] == waiting[0]["event_id"]
    assert record["consent_id"] == page.evaluate("consent.id")
    assert page.evaluate(f"localStorage.getItem({QUEUE!r})") is None


def test_a_record_sent_twice_is_logged_once(shop: Shop) -> None:
    page = shop.visit()
    shop.click("reject")
    page.wait_for_function("() => consent.id !== null")
    (record,) = shop.wait_for_records(1)
    # As if the answer had been lost: the same record is still waiting when the next page loads.
    again = {
        "event_id": record["event_id"],
        "action": "reject_all",
        "choices": {"functional": False, "analytics": False, "advertising": False},
        "revision": 1,
        "language": "en",
        "page_url": record["page_url"],
        "gpc": False,
        "dnt": False,
    }
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [QUEUE, json.dumps([again])])
    shop.visit()
    page.wait_for_function(f"() => localStorage.getItem({QUEUE!r}) === null")
    assert len(shop.records()) == 1


def test_record_carries_what_the_visitor_was_shown(shop: Shop) -> None:
    page = shop.visit(query="?lang=nl&utm_source=mail")
    shop.click("accept")
    page.wait_for_function("() => consent.id !== null")
    (record,) = shop.wait_for_records(1)
    assert (record["language"], record["revision"], record["gpc"], record["dnt"]) == ("nl", 1, 0, 0)
    assert record["page_url"] == page.url.partition("?")[0]
