"""The widget on a privacy page of another origin, next to the real banner."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.declaration import PageServer, Service, privacy_page

OPTIONAL = ("functional", "analytics", "advertising")


def widget(page: Page) -> Locator:
    return page.locator("#consent-declaration")


def first_served(service: Service) -> str:
    with sqlite3.connect(f"file:{service.database}?mode=ro", uri=True) as connection:
        row = connection.execute("SELECT first_served_at FROM inventory_versions WHERE site = ?", [service.site])
        return str(row.fetchone()[0])[:10]


def accept_all(page: Page, service: Service) -> str:
    """Accept everything in the banner; return the consent ID once the service has recorded it."""
    page.get_by_role("button", name="Accept all").click()
    expect(widget(page).get_by_role("button", name="Download my consent history")).to_be_enabled()
    consent_id = page.evaluate("window.consent.id")
    assert service.wait_for_records(consent_id, 1)[0]["action"] == "accept_all"
    return str(consent_id)


def choices_shown(page: Page) -> dict[str, str]:
    status = widget(page).locator("[data-consent-status] dd[data-consent-category]")
    return {cell.get_attribute("data-consent-category") or "": cell.inner_text() for cell in status.all()}


def test_widget_renders_the_declaration_in_the_page_language(page: Page, pages: PageServer, service: Service) -> None:
    page.goto(privacy_page(pages, service, lang="nl", banner="none"))
    declaration = widget(page)
    expect(declaration.get_by_role("table")).to_have_count(4)
    analytics = declaration.get_by_role("table", name="Analyse")
    expect(analytics.get_by_role("columnheader")).to_have_text(["Naam", "Aanbieder", "Doel", "Looptijd"])
    ga = analytics.get_by_role("row").filter(has=page.get_by_role("rowheader", name="_ga*"))
    expect(ga.get_by_role("cell")).to_have_text(
        ["Google Analytics", "Onderscheidt bezoekers en sessies.", "13 maanden"]
    )
    expect(declaration.get_by_role("heading", name="Strikt noodzakelijk")).to_be_visible()
    expect(declaration.locator("[data-consent-version]")).to_have_text(
        f"Versie 1 · In gebruik sinds {first_served(service)}"
    )
    expect(declaration.locator("[data-consent-status]")).to_have_text("Nog geen keuze gemaakt.")
    # Without the banner there is nothing to change or withdraw yet.
    for name in ("Toestemming wijzigen", "Toestemming intrekken", "Mijn toestemmingsgeschiedenis downloaden"):
        expect(declaration.get_by_role("button", name=name)).to_be_disabled()


def test_container_attributes_choose_language_and_heading_level(
    page: Page, pages: PageServer, service: Service
) -> None:
    attributes = ' data-lang="en" data-heading-level="3"'
    page.goto(privacy_page(pages, service, path="/privatebeleid", lang="nl", banner="none", container=attributes))
    declaration = widget(page)
    expect(declaration).to_have_attribute("lang", "en")
    expect(declaration.get_by_role("heading", level=3)).to_have_text(
        ["Cookie preferences", "Strictly necessary", "Functional", "Analytics", "Advertising"]
    )
    expect(declaration.get_by_role("heading", level=2)).to_have_count(0)
    expect(declaration.get_by_role("table", name="Analytics").get_by_role("cell", name="13 months")).to_be_visible()


def test_widget_takes_on_the_pages_fonts_and_colours(page: Page, pages: PageServer, service: Service) -> None:
    page.goto(privacy_page(pages, service, banner="none"))
    cell = widget(page).get_by_role("cell").first
    expect(cell).to_be_visible()
    style = "node => [getComputedStyle(node).fontFamily, getComputedStyle(node).color]"
    assert cell.evaluate(style) == ["Georgia, serif", "rgb(20, 40, 60)"]
    assert widget(page).locator("[style]").count() == 0


def test_widget_shows_the_visitors_choice_id_and_date(page: Page, pages: PageServer, service: Service) -> None:
    page.goto(privacy_page(pages, service))
    declaration = widget(page)
    expect(declaration.locator("[data-consent-status]")).to_have_text("No choice made yet.")
    expect(declaration.get_by_role("button", name="Withdraw consent")).to_be_disabled()
    consent_id = accept_all(page, service)
    assert choices_shown(page) == dict.fromkeys(("necessary", *OPTIONAL), "Allowed")
    status = declaration.locator("[data-consent-status]")
    expect(status.locator("code")).to_have_text(consent_id)
    date = status.locator("time")
    expect(date).to_have_attribute("datetime", page.evaluate("window.consent.date"))
    assert str(date.get_attribute("datetime")).startswith(service.records(consent_id)[0]["recorded_at"][:10])


def test_change_opens_the_banner_preferences(page: Page, pages: PageServer, service: Service) -> None:
    page.goto(privacy_page(pages, service))
    accept_all(page, service)
    preferences = page.get_by_role("dialog")
    expect(preferences).to_be_hidden()
    widget(page).get_by_role("button", name="Change your consent").click()
    expect(preferences).to_be_visible()
    expect(preferences.get_by_role("switch", name="Analytics")).to_be_checked()
    preferences.get_by_role("switch", name="Analytics").uncheck()
    preferences.get_by_role("button", name="Save choices").click()
    expect(widget(page).locator("dd[data-consent-category='analytics']")).to_have_text("Not allowed")


def test_one_click_withdrawal_is_recorded(page: Page, pages: PageServer, service: Service) -> None:
    page.goto(privacy_page(pages, service))
    consent_id = accept_all(page, service)
    widget(page).get_by_role("button", name="Withdraw consent").click()
    expect(widget(page).locator("dd[data-consent-category='advertising']")).to_have_text("Not allowed")
    assert choices_shown(page) == {"necessary": "Allowed", **dict.fromkeys(OPTIONAL, "Not allowed")}
    records = service.wait_for_records(consent_id, 2)
    assert [r["action"] for r in records] == ["accept_all", "withdraw"]
    assert [records[1][c] for c in ("necessary", *OPTIONAL)] == [1, 0, 0, 0]
    assert page.evaluate("window.consent.get()") == {"necessary": True, **dict.fromkeys(OPTIONAL, False)}
    # Nothing is left to withdraw until something is granted again.
    expect(widget(page).get_by_role("button", name="Withdraw consent")).to_be_disabled()


def test_download_holds_only_this_visitors_history(
    page: Page, browser: Browser, pages: PageServer, service: Service, tmp_path: Path
) -> None:
    other = browser.new_context()
    try:
        other_page = other.new_page()
        other_page.goto(privacy_page(pages, service))
        other_id = accept_all(other_page, service)
    finally:
        other.close()
    page.goto(privacy_page(pages, service))
    consent_id = accept_all(page, service)
    widget(page).get_by_role("button", name="Withdraw consent").click()
    service.wait_for_records(consent_id, 2)
    expect(widget(page).get_by_role("button", name="Download my consent history")).to_be_enabled()
    with page.expect_download() as download_info:
        widget(page).get_by_role("button", name="Download my consent history").click()
    download = download_info.value
    assert download.suggested_filename == f"consent-{consent_id}.json"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    history = json.loads(saved.read_text(encoding="utf-8"))
    assert history["consent_id"] == consent_id != other_id
    assert [r["record_id"] for r in history["records"]] == [r["id"] for r in service.records(consent_id)]
    assert [r["action"] for r in history["records"]] == ["accept_all", "withdraw"]
    others = {r["id"] for r in service.records(other_id)}
    assert others and not others & {r["record_id"] for r in history["records"]}


@pytest.mark.parametrize("banner", ["after", "late"])
def test_widget_picks_up_a_banner_that_loads_after_it(
    page: Page, pages: PageServer, service: Service, banner: str
) -> None:
    page.goto(privacy_page(pages, service, path=f"/privacy-{banner}", banner=banner))
    change = widget(page).get_by_role("button", name="Change your consent")
    expect(change).to_be_enabled()
    accept_all(page, service)
    assert choices_shown(page)["advertising"] == "Allowed"
    page.reload()
    expect(widget(page).locator("dd[data-consent-category='analytics']")).to_have_text("Allowed")
