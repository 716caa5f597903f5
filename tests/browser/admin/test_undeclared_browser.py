"""End to end: a page sets a cookie the inventory does not declare, the banner reports it, the dashboard lists it."""

from __future__ import annotations

import json

from playwright.sync_api import Page, Request, expect

from tests.support.dashboard import Dashboard, ShopPages, log_in

REPORT = "/api/v1/sites/demo/undeclared"


def test_undeclared_cookie_is_reported_once_and_listed(page: Page, dashboard: Dashboard, shop_pages: ShopPages):
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if request.url.endswith(REPORT) else None)
    # pixel_id is declared nowhere; _ga_XYZ matches the _ga prefix and session is declared as necessary.
    with page.expect_response(lambda response: response.url.endswith(REPORT), timeout=15_000) as answer:
        page.goto(f"{shop_pages.origin}/products/42?set=pixel_id,_ga_XYZ,session&utm=mail")
    assert answer.value.status == 202
    body = json.loads(sent[0].post_data or "")
    assert set(body) == {"names", "page_path", "revision"}  # nothing that identifies the visitor
    assert "pixel_id" in body["names"] and "_ga_XYZ" not in body["names"]
    assert body["page_path"] == "/products/42" and body["revision"] == 1
    assert "=1" not in (sent[0].post_data or "")  # names, never values
    assert "cookie" not in {name.lower() for name in sent[0].headers}

    # Once per visitor and revision: another page with another unknown cookie sends nothing.
    page.goto(f"{shop_pages.origin}/cart?set=second_tracker")
    page.wait_for_timeout(3_500)
    assert len(sent) == 1

    log_in(page, dashboard)
    page.goto(f"{dashboard.url}/admin/sites/demo")
    rows = page.locator("table.undeclared-cookies tbody tr")
    expect(rows.filter(has_text="pixel_id")).to_contain_text("/products/42")
    expect(rows.filter(has_text="_ga_XYZ")).to_have_count(0)
    expect(rows.filter(has_text="session")).to_have_count(0)
    expect(rows.filter(has_text="second_tracker")).to_have_count(0)
