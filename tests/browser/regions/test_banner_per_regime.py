"""Each regime as a visitor meets it, chosen by CloudFront's region header: what shows, what runs, what is recorded."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Request, expect

from tests.support.browser import Shop
from tests.support.regional_pages import (
    GRANTED,
    NOTICE,
    OPT_OUT,
    TAGS,
    consent_updates,
    event,
    gtag_commands,
    ran,
    states,
    visit,
)


def test_opt_in_region_asks_first_and_records_the_regime(shop: Shop, visitor_from: Any) -> None:
    visitor_from("DE")
    page = visit(shop)
    expect(shop.banner).to_be_visible()
    for action in ("accept", "reject", "customise"):
        expect(shop.banner.locator(f"button[data-action={action}]")).to_be_visible()
    expect(shop.banner.locator("button[data-action=opt-out]")).to_have_count(0)
    page.wait_for_timeout(300)
    assert ran(page) == []
    assert page.evaluate("consent.get()") is None
    assert consent_updates(page) == []
    assert [c[2] for c in gtag_commands(page) if c[:2] == ["consent", "update"]] == []
    shop.click("reject")
    assert consent_updates(page) == [event("opt-in", functional=False, analytics=False, advertising=False)]
    (record,) = shop.wait_for_records(1, "world")
    assert (record["action"], record["regime"], record["region"]) == ("reject_all", "opt-in", "DE")
    assert (record["gpc"], record["sec_gpc"]) == (0, 0)
    page.evaluate("consent.open()")
    shop.click("accept", "preferences")
    page.wait_for_function("() => (window.ran || []).length === 3")
    assert ran(page) == ["functional", "analytics", "advertising"]
    assert consent_updates(page)[-1] == event("opt-in", **GRANTED)


def test_consent_mode_defaults_are_region_scoped_before_any_tag(shop: Shop, visitor_from: Any) -> None:
    visitor_from("DE")
    page = visit(shop)
    commands = gtag_commands(page)
    defaults = [c[2] for c in commands if c[:2] == ["consent", "default"]]
    # One default per regime mapped (opt-in, opt-out, notice, none), then the global one, last.
    assert [d.get("region") for d in defaults][1:] == [["US-CA", "US-CO"], ["US"], ["JP"], None]
    eu = defaults[0]
    assert {"DE", "FR", "GB", "IE", "NL", "AT"} <= set(eu.pop("region")) and "US" not in eu
    denied = {**states(dict.fromkeys(GRANTED, False)), "wait_for_update": 500}
    granted = {**states(GRANTED), "wait_for_update": 500}
    assert eu == denied
    assert [{k: v for k, v in d.items() if k != "region"} for d in defaults[1:]] == [granted, granted, granted, denied]
    assert ["set", "ads_data_redaction", True] in commands and ["set", "url_passthrough", True] in commands
    # All before the first tag could run: the banner runs them as it starts.
    assert commands.index(["set", "url_passthrough", True]) == len(commands) - 1


def test_opt_out_region_runs_everything_until_the_visitor_opts_out(shop: Shop, visitor_from: Any) -> None:
    visitor_from("US-CA")
    shop.page.context.add_cookies([{"name": "_fbp", "value": "fb.1.2", "url": shop.pages.site.origin()}])
    page = visit(shop)
    expect(shop.banner).to_contain_text(NOTICE)
    expect(shop.banner.locator("button[data-action=opt-out]")).to_have_text(OPT_OUT)
    for action in ("customise", "ok"):
        expect(shop.banner.locator(f"button[data-action={action}]")).to_be_visible()
    expect(shop.banner.locator("button[data-action=accept]")).to_have_count(0)
    page.wait_for_function("() => (window.ran || []).length === 3")
    assert ran(page) == ["functional", "analytics", "advertising"]
    assert page.evaluate("consent.get()") == {"necessary": True, **GRANTED}
    assert ["consent", "update", states(GRANTED)] in gtag_commands(page)
    assert consent_updates(page) == [event("opt-out", **GRANTED)]
    assert shop.records("world") == []

    shop.click("opt-out")
    expect(shop.banner).to_be_hidden()
    assert consent_updates(page)[-1] == event("opt-out", functional=True, analytics=True, advertising=False)
    assert gtag_commands(page)[-1] == ["consent", "update", states({**GRANTED, "advertising": False})]
    assert shop.cookie("_fbp") is None
    (record,) = shop.wait_for_records(1, "world")
    assert (record["action"], record["functional"], record["analytics"], record["advertising"]) == ("opt_out", 1, 1, 0)
    assert (record["regime"], record["region"], record["gpc"], record["sec_gpc"]) == ("opt-out", "US-CA", 0, 0)

    page = visit(shop)
    page.wait_for_timeout(300)
    expect(shop.banner).to_be_hidden()
    assert ran(page) == ["functional", "analytics"]
    assert consent_updates(page) == [event("opt-out", functional=True, analytics=True, advertising=False)]


def test_a_page_link_opts_out_too(shop: Shop, visitor_from: Any) -> None:
    visitor_from("US-CA")
    page = visit(shop, '<footer><a href="#" data-consent-opt-out>Do not sell my data</a></footer>')
    page.get_by_role("link", name="Do not sell my data").click()
    (record,) = shop.wait_for_records(1, "world")
    assert (record["action"], record["advertising"], record["regime"]) == ("opt_out", 0, "opt-out")
    assert page.evaluate("consent.get().advertising") is False


def test_an_opt_out_is_no_answer_in_an_opt_in_region(shop: Shop, visitor_from: Any) -> None:
    visitor_from("US-CA")
    visit(shop)
    shop.click("opt-out")
    shop.wait_for_records(1, "world")
    # The same visitor in Germany: functional and analytics ran without consent in California, not here.
    visitor_from("DE")
    page = visit(shop, '<footer><a href="#" data-consent-opt-out>Do not sell my data</a></footer>')
    expect(shop.banner.locator("button[data-action=accept]")).to_be_visible()
    page.wait_for_timeout(300)
    assert ran(page) == []
    # Here the page's opt-out link refuses advertising as a choice of its own: nothing else is granted.
    page.get_by_role("link", name="Do not sell my data").click()
    expect(shop.banner).to_be_hidden()
    records = shop.wait_for_records(2, "world")
    assert [(r["action"], r["functional"], r["advertising"], r["regime"]) for r in records] == [
        ("opt_out", 1, 0, "opt-out"),
        ("custom", 0, 0, "opt-in"),
    ]


def test_ok_in_an_opt_out_region_is_remembered_and_not_recorded(shop: Shop, visitor_from: Any) -> None:
    visitor_from("US-CA")
    page = visit(shop)
    shop.click("ok")
    expect(shop.banner).to_be_hidden()
    cookie = shop.cookie()
    assert cookie is not None and "|action:dismiss|" in cookie["value"] and "|advertising:1|" in cookie["value"]
    page = visit(shop)
    page.wait_for_function("() => (window.ran || []).length === 3")
    expect(shop.banner).to_be_hidden()
    page.wait_for_timeout(300)
    assert shop.records("world") == []


def test_notice_region_informs_blocks_nothing_and_records_only_a_saved_choice(shop: Shop, visitor_from: Any) -> None:
    visitor_from("US-NY")
    page = visit(shop)
    expect(shop.banner).to_contain_text(NOTICE)
    expect(shop.banner.get_by_role("link", name="Cookie policy")).to_be_visible()
    expect(shop.banner.locator("button")).to_have_count(1)
    expect(shop.banner.locator("button[data-action=ok]")).to_have_text("OK")
    page.wait_for_function("() => (window.ran || []).length === 3")
    assert consent_updates(page) == [event("notice", **GRANTED)]
    shop.click("ok")
    expect(shop.banner).to_be_hidden()
    page = visit(shop, "<footer><button data-consent-open>Cookie settings</button></footer>")
    expect(shop.banner).to_be_hidden()
    assert shop.records("world") == []
    page.get_by_role("button", name="Cookie settings").click()
    shop.preferences.get_by_role("switch", name="Advertising").uncheck()
    shop.click("save", "preferences")
    (record,) = shop.wait_for_records(1, "world")
    assert (record["action"], record["advertising"], record["regime"]) == ("custom", 0, "notice")
    assert record["region"] == "US-NY"


def test_no_banner_where_the_regime_is_none_but_the_api_and_preferences_stay(shop: Shop, visitor_from: Any) -> None:
    visitor_from("JP")
    page = visit(shop, "<footer><button data-consent-open>Cookie settings</button></footer>")
    page.wait_for_function("() => (window.ran || []).length === 3")
    page.wait_for_timeout(300)
    expect(shop.banner).to_be_hidden()
    assert page.evaluate("consent.get()") == {"necessary": True, **GRANTED}
    assert consent_updates(page) == [event("none", **GRANTED)]
    page.get_by_role("button", name="Cookie settings").click()
    expect(shop.preferences).to_be_visible()
    shop.click("reject", "preferences")
    (record,) = shop.wait_for_records(1, "world")
    assert (record["action"], record["regime"], record["region"]) == ("withdraw", "none", "JP")
    expect(shop.banner).to_be_hidden()


def test_an_untrusted_region_header_gives_the_default_regime(shop: Shop, visitor_from: Any) -> None:
    # The service trusts CloudFront's headers only; anyone can send Cloudflare's or Vercel's.
    visitor_from(None, **{"CF-IPCountry": "JP", "X-Vercel-IP-Country": "US"})
    page = visit(shop)
    expect(shop.banner.locator("button[data-action=accept]")).to_be_visible()
    page.wait_for_timeout(300)
    assert ran(page) == []
    shop.click("accept")
    (record,) = shop.wait_for_records(1, "world")
    assert (record["regime"], record["region"]) == ("opt-in", None)


def test_nothing_but_banner_js_is_requested_before_the_banner_shows(shop: Shop, visitor_from: Any) -> None:
    for where in ("DE", "US-CA"):
        visitor_from(where)
        requested: list[str] = []

        def note(request: Request, into: list[str] = requested) -> None:
            into.append(request.url)

        shop.page.on("request", note)
        url = shop.pages.add(f"<main><h1>Shop</h1></main>{TAGS}", site="world")
        shop.page.goto(url)
        expect(shop.banner).to_be_visible()
        shop.page.remove_listener("request", note)
        assert requested == [url, f"{shop.service.url}/s/world/banner.js"], where
