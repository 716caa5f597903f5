"""The two layers: equal first-layer buttons, per-category toggles with their cookies, reopening, withdrawing."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser import Shop

LINKS = (
    '<main><h1>Shop</h1><a href="#" data-consent-open>Cookie settings</a> '
    '<a href="#" data-consent-withdraw>Withdraw</a></main>'
)


def test_first_layer_offers_accept_reject_and_customise_with_equal_prominence(shop: Shop) -> None:
    shop.visit()
    expect(shop.banner).to_be_visible()
    buttons = shop.banner.locator("button")
    expect(buttons).to_have_text(["Accept all", "Reject all", "Customise"])
    looks = buttons.evaluate_all(
        """buttons => buttons.map(b => {
            const s = getComputedStyle(b), r = b.getBoundingClientRect();
            return [Math.round(r.width), Math.round(r.height), s.backgroundColor, s.color, s.fontSize, s.fontWeight,
                    s.borderTopWidth, s.borderTopColor, s.paddingTop];
        })"""
    )
    assert looks[0] == looks[1] == looks[2]
    expect(shop.banner.locator("a")).to_have_attribute("href", f"{shop.service.url}/s/demo/cookies")


def test_second_layer_has_a_toggle_per_category_and_only_necessary_is_ticked(shop: Shop) -> None:
    shop.visit()
    shop.click("customise")
    expect(shop.preferences).to_be_visible()
    expect(shop.banner).to_be_hidden()
    switches = shop.preferences.get_by_role("switch")
    expect(switches).to_have_count(4)
    expect(shop.preferences.get_by_role("switch", name="Strictly necessary")).to_be_checked()
    expect(shop.preferences.get_by_role("switch", name="Strictly necessary")).to_be_disabled()
    for name in ("Functional", "Analytics", "Advertising"):
        expect(shop.preferences.get_by_role("switch", name=name)).not_to_be_checked()


def test_second_layer_lists_each_category_cookies_with_provider_purpose_and_expiry(shop: Shop) -> None:
    shop.visit(lang="nl")
    shop.click("customise")
    analytics = shop.preferences.locator("[data-category=analytics]")
    expect(analytics.locator("p").first).to_have_text(
        "Vertellen ons welke pagina's bezocht worden, zodat we de winkel kunnen verbeteren."
    )
    analytics.locator("summary").click()
    expect(analytics.locator("th")).to_have_text(["Naam", "Aanbieder", "Doel", "Looptijd"])
    row = analytics.locator("tr", has_text="_gid")
    expect(row.locator("td")).to_have_text(
        ["_gid", "Google Analytics", "Onderscheidt bezoekers gedurende 24 uur.", "1 dag"]
    )
    expect(analytics.locator("tbody tr")).to_have_count(5)
    necessary = shop.preferences.locator("[data-category=necessary] tbody tr", has_text="consent")
    expect(necessary.locator("td").nth(0)).to_have_text("consent")


def test_customised_choice_is_recorded_and_applied(shop: Shop) -> None:
    shop.visit()
    shop.click("customise")
    shop.preferences.get_by_role("switch", name="Analytics").check()
    shop.click("save", "preferences")
    expect(shop.preferences).to_be_hidden()
    assert shop.page.evaluate("consent.get()") == {
        "necessary": True,
        "functional": False,
        "analytics": True,
        "advertising": False,
    }
    (record,) = shop.wait_for_records(1)
    assert (record["action"], record["functional"], record["analytics"], record["advertising"]) == (
        "custom",
        0,
        1,
        0,
    )


def test_data_consent_open_reopens_preferences_showing_consent_id_and_date(shop: Shop) -> None:
    shop.visit(LINKS)
    shop.click("accept")
    expect(shop.banner).to_be_hidden()
    shop.page.wait_for_function("() => consent.id !== null")
    consent_id = shop.page.evaluate("consent.id")
    shop.page.get_by_text("Cookie settings").click()
    expect(shop.preferences).to_be_visible()
    expect(shop.preferences).to_contain_text(f"Consent ID: {consent_id}")
    expect(shop.preferences).to_contain_text("Date: ")
    for name in ("Functional", "Analytics", "Advertising"):
        expect(shop.preferences.get_by_role("switch", name=name)).to_be_checked()
    # The visitor can take their history with them, authorised by the receipt in the link.
    link = shop.preferences.get_by_role("link", name="Download my consent history")
    assert f"/api/v1/sites/demo/consents/{consent_id}?receipt=" in (link.get_attribute("href") or "")


def test_withdrawing_takes_no_more_clicks_than_giving(shop: Shop) -> None:
    shop.visit(LINKS)
    shop.click("accept")  # giving: one click
    shop.page.wait_for_function("() => consent.id !== null")
    shop.page.get_by_text("Withdraw").click()  # withdrawing: one click
    shop.page.wait_for_function("() => consent.get().analytics === false")
    # From the preferences, withdrawing is one click, as accepting is.
    shop.page.get_by_text("Cookie settings").click()
    expect(shop.preferences.locator("button[data-action=reject]")).to_have_text("Reject all")
    shop.click("accept", "preferences")
    shop.page.get_by_text("Cookie settings").click()
    expect(shop.preferences.locator("button[data-action=reject]")).to_have_text("Withdraw consent")
    shop.click("reject", "preferences")
    records = shop.wait_for_records(4)
    assert [r["action"] for r in records] == ["accept_all", "withdraw", "accept_all", "withdraw"]
    assert [r["analytics"] for r in records] == [1, 0, 1, 0]
    assert len({r["consent_id"] for r in records}) == 1


def test_banner_also_starts_from_a_blocking_script_in_head(shop: Shop) -> None:
    # Run before <body> exists: the banner waits for it.
    shop.visit(loading="")
    expect(shop.banner).to_be_visible()
    shop.click("reject")
    assert shop.page.evaluate("consent.get().analytics") is False
