"""Embeds: an iframe with data-src stays empty behind an accessible placeholder until its category is granted."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser import Shop

FRAME = (
    '<main><h1>Video</h1><iframe data-consent="functional" data-provider="ClayTube" width="400" height="200"'
    ' title="Throwing a mug" data-src="/frame.html"></iframe><p id="after">After the video.</p></main>'
)
TEXT = "This content from ClayTube needs consent for Functional."


def _frame_page(shop: Shop) -> None:
    shop.pages.site.pages["/frame.html"] = ("<p>the video</p>", {})


def test_placeholder_stands_in_for_the_embed_at_its_size(shop: Shop) -> None:
    _frame_page(shop)
    page = shop.visit(FRAME)
    placeholder = page.get_by_role("group", name=TEXT)
    expect(placeholder).to_be_visible()
    expect(placeholder.get_by_role("button")).to_have_text(["Load once", "Always allow"])
    iframe = page.locator("iframe")
    expect(iframe).to_be_hidden()
    assert iframe.get_attribute("src") is None
    box = page.locator("iframe + *, :has(+ iframe)").first.bounding_box()
    assert box is not None and (round(box["width"]), round(box["height"])) == (404, 204)


def test_load_once_loads_this_embed_without_recording_a_choice(shop: Shop) -> None:
    _frame_page(shop)
    page = shop.visit(FRAME)
    page.get_by_role("button", name="Load once").click()
    expect(page.frame_locator("iframe").locator("p")).to_have_text("the video")
    expect(page.get_by_role("group", name=TEXT)).to_have_count(0)
    page.wait_for_timeout(300)
    assert shop.records() == [] and page.evaluate("consent.get()") is None
    shop.visit(FRAME)
    expect(page.get_by_role("group", name=TEXT)).to_be_visible()


def test_always_allow_grants_the_category_records_it_and_loads_from_then_on(shop: Shop) -> None:
    _frame_page(shop)
    page = shop.visit(FRAME)
    page.get_by_role("button", name="Always allow").click()
    expect(page.frame_locator("iframe").locator("p")).to_have_text("the video")
    (record,) = shop.wait_for_records(1)
    assert (record["action"], record["functional"], record["analytics"], record["advertising"]) == (
        "custom",
        1,
        0,
        0,
    )
    shop.visit(FRAME)
    expect(page.frame_locator("iframe").locator("p")).to_have_text("the video")
    expect(page.get_by_role("group", name=TEXT)).to_have_count(0)


def test_embeds_added_later_wait_or_load_by_consent(shop: Shop) -> None:
    _frame_page(shop)
    page = shop.visit()
    add = """() => { const f = document.createElement('iframe'); f.dataset.consent = 'functional';
        f.dataset.src = '/frame.html'; f.title = 'Late'; document.body.append(f); }"""
    page.evaluate(add)
    expect(page.get_by_role("group", name="This content from 127.0.0.1 needs consent for Functional.")).to_be_visible()
    shop.click("accept")
    expect(page.frame_locator("iframe").locator("p")).to_have_text("the video")
