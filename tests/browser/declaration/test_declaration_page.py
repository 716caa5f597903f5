"""The declaration page in Chromium: language switch, print layout, accessible tables."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.declaration import Service


def test_visitor_switches_language_and_reads_the_tables(page: Page, service: Service) -> None:
    page.goto(f"{service.url}/s/{service.site}/cookies")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    analytics = page.get_by_role("table", name="Analytics")
    expect(analytics.get_by_role("columnheader")).to_have_text(["Name", "Provider", "Purpose", "Expiry"])
    expect(analytics.get_by_role("rowheader")).to_have_text(["_ga*", "_gid", "__hstc", "hubspotutk", r"_hjSession_\d+"])
    ga = analytics.get_by_role("row").filter(has=page.get_by_role("rowheader", name="_ga*"))
    expect(ga.get_by_role("cell")).to_have_text(
        ["Google Analytics", "Distinguishes visitors and sessions.", "13 months"]
    )

    page.get_by_role("link", name="NL").click()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    analytics = page.get_by_role("table", name="Analyse")
    expect(analytics.get_by_role("columnheader")).to_have_text(["Naam", "Aanbieder", "Doel", "Looptijd"])
    hotjar = analytics.get_by_role("row").filter(has=page.get_by_role("rowheader", name=r"_hjSession_\d+"))
    expect(hotjar.get_by_role("cell").last).to_have_text("30 minuten")


def test_page_prints_without_navigation(page: Page, service: Service) -> None:
    page.goto(f"{service.url}/s/{service.site}/cookies")
    expect(page.get_by_role("link", name="NL")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.get_by_role("link", name="NL")).to_be_hidden()
    expect(page.get_by_role("table")).to_have_count(4)
    expect(page.get_by_role("table", name="Advertising")).to_be_visible()
    header = page.get_by_role("table", name="Advertising").locator("thead")
    assert header.evaluate("node => getComputedStyle(node).display") == "table-header-group"
