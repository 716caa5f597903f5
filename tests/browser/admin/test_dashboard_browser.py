"""The dashboard in Chromium: log in, read the chart and its numbers, look up a consent ID, log out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from consent import create_app
from consent.store.models import db
from tests.support.admin_seed import record, seed
from tests.support.dashboard import USERNAME, Dashboard, log_in

VISITOR = "5c6d7e8f-1a2b-4c3d-8e9f-0a1b2c3d4e5f"


@pytest.fixture(scope="module")
def seeded(dashboard: Dashboard) -> dict[str, str]:
    """Yesterday: 4 records (analytics 3 of 4); today: 2 (every category 1 of 2, one with GPC)."""
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    app = create_app({"TESTING": True, "DATABASE_URL": dashboard.database_url, "SECRET_KEY": "seed"})
    seed(
        app,
        [
            record("demo", yesterday - timedelta(minutes=4), consent_id=VISITOR),
            record("demo", yesterday - timedelta(minutes=3), "custom", analytics=True),
            record("demo", yesterday - timedelta(minutes=2), "custom", analytics=True, functional=True),
            record("demo", yesterday - timedelta(minutes=1), "reject_all"),
            record("demo", now - timedelta(seconds=20), "accept_all", gpc=True),
            record("demo", now - timedelta(seconds=10), "reject_all", consent_id=VISITOR),
        ],
    )
    with app.app_context():
        db.engine.dispose()
    return {"yesterday": yesterday.date().isoformat(), "today": now.date().isoformat()}


def test_log_in_read_the_chart_look_up_a_visitor_and_log_out(page: Page, dashboard: Dashboard, seeded):
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    log_in(page, dashboard)
    page.get_by_role("link", name="Demo Shop Ltd").click()
    expect(page.locator("#total-records")).to_have_text("6")
    expect(page.locator("#gpc-share")).to_have_text("16.7 %")

    chart = page.get_by_role("img", name="Opt-in rate per category and day")
    expect(chart).to_be_visible()
    points = {
        (point.get_attribute("data-day"), point.get_attribute("data-category")): point.get_attribute("data-rate")
        for point in chart.locator("circle").all()
    }
    assert points[(seeded["yesterday"], "analytics")] == "0.7500"
    assert points[(seeded["yesterday"], "functional")] == "0.5000"
    assert points[(seeded["yesterday"], "advertising")] == "0.2500"
    assert points[(seeded["today"], "analytics")] == "0.5000"
    assert len(points) == 6  # the other 28 days have no records and no points
    # The stylesheet reached the chart under the page's CSP: lines are coloured, not black.
    stroke = chart.locator("polyline.series-analytics").first.evaluate("line => getComputedStyle(line).stroke")
    assert stroke == "rgb(197, 90, 0)"
    row = page.locator(f'table.days tr[data-day="{seeded["yesterday"]}"]')
    expect(row.locator('td[data-category="analytics"]')).to_have_text("75.0 %")

    page.get_by_label("Look up a consent ID").fill(VISITOR)
    page.get_by_role("button", name="Look up").click()
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("accept_all")
    expect(history.nth(1)).to_contain_text("reject_all")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto(f"{dashboard.url}/admin/sites/demo")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert problems == []


def test_wrong_password_keeps_the_dashboard_closed(page: Page, dashboard: Dashboard):
    page.goto(f"{dashboard.url}/admin/login")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.goto(f"{dashboard.url}/admin")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_usable_on_a_phone(browser, dashboard: Dashboard, seeded):
    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        log_in(page, dashboard)
        page.goto(f"{dashboard.url}/admin/sites/demo")
        # Nothing wider than the screen: wide tables scroll inside their own box.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        chart = page.get_by_role("img", name="Opt-in rate per category and day")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] >= 300 and box["height"] >= 130
        lookup = page.get_by_role("button", name="Look up").bounding_box()
        assert lookup is not None and lookup["height"] >= 40  # a comfortable tap target
    finally:
        phone.close()
