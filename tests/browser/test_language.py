"""Language: ?lang, then <html lang>, then navigator.languages, matched to the site's languages, else the default."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.support.browser import Shop


@pytest.mark.parametrize(
    ("lang", "query", "title", "accept"),
    [
        ("en", "?lang=nl", "Cookies op deze site", "Alles accepteren"),  # the site's own override of the built-in
        ("nl-BE", "", "Cookies op deze site", "Alles accepteren"),
        ("nl", "?lang=en", "Cookies on this site", "Accept all"),
        ("fr", "", "Cookies on this site", "Accept all"),  # not a language of this site: the default
    ],
)
def test_language_from_query_or_html_lang(shop: Shop, lang: str, query: str, title: str, accept: str) -> None:
    shop.visit(lang=lang, query=query)
    expect(shop.banner.locator("h2")).to_have_text(title)
    expect(shop.banner.locator("button[data-action=accept]")).to_have_text(accept)
    expect(shop.banner).to_have_attribute("lang", {"Alles accepteren": "nl"}.get(accept, "en"))


def test_language_from_navigator_languages(browser: Browser, pages: Any) -> None:
    context = browser.new_context(locale="nl-NL")
    try:
        shop = Shop(context.new_page(), pages, pages.service)
        shop.visit(lang="")
        expect(shop.banner.locator("button[data-action=reject]")).to_have_text("Alles weigeren")
    finally:
        context.close()


def test_built_in_texts_of_a_site_in_other_languages(shop: Shop) -> None:
    shop.visit(site="boxed", lang="fr-CA")
    expect(shop.banner.locator("button")).to_have_text(["Tout accepter", "Tout refuser", "Personnaliser"])
    shop.visit(site="boxed", lang="en")
    expect(shop.banner.locator("button")).to_have_text(["Alle akzeptieren", "Alle ablehnen", "Anpassen"])
