"""Google Consent Mode v2: default denied before any tag, then an update on every choice."""

from __future__ import annotations

from typing import Any

from tests.support.browser import Shop

NONCE = "gtag-n0nce"
GTAG_FIRST = (
    f'<script nonce="{NONCE}">window.dataLayer = window.dataLayer || [];'
    "function gtag(){dataLayer.push(arguments);} gtag('js', 'loaded'); gtag('config', 'G-DEMO');</script>"
)
TAG = (
    f'<script type="text/plain" data-consent="analytics" nonce="{NONCE}">'
    "window.dataLayer.push(['event', 'analytics tag ran']);</script>"
)
DENIED = {
    "ad_storage": "denied",
    "ad_user_data": "denied",
    "ad_personalization": "denied",
    "analytics_storage": "denied",
    "functionality_storage": "denied",
    "personalization_storage": "denied",
    "security_storage": "granted",
}
# The default command: denied, with the site's wait_for_update (500 ms unless cookies.yaml says otherwise).
DEFAULT = {**DENIED, "wait_for_update": 500}


def _data_layer(shop: Shop) -> list[list[Any]]:
    """The gtag commands in dataLayer (the tag-manager events, plain objects, left out)."""
    script = "window.dataLayer.filter(entry => entry.length !== undefined).map(entry => Array.from(entry))"
    return shop.page.evaluate(script)  # type: ignore[no-any-return]


def _csp(shop: Shop) -> str:
    return shop.pages.strict_csp(f" 'nonce-{NONCE}'")


def test_default_is_denied_before_tags_and_update_follows_each_choice(shop: Shop) -> None:
    shop.visit("<main>Shop</main>" + TAG, head=GTAG_FIRST, csp=_csp(shop))
    layer = _data_layer(shop)
    assert layer[:2] == [["js", "loaded"], ["config", "G-DEMO"]]
    assert layer[2] == ["consent", "default", DEFAULT]
    assert ["event", "analytics tag ran"] not in layer
    # Arguments objects, as gtag itself pushes them.
    assert shop.page.evaluate("Object.prototype.toString.call(window.dataLayer[2])") == "[object Arguments]"
    shop.click("accept")
    shop.page.wait_for_function("() => window.dataLayer.some(e => e[1] === 'analytics tag ran')")
    layer = _data_layer(shop)
    granted = {key: "granted" for key in DENIED}
    update = layer.index(["consent", "update", granted])
    assert update < layer.index(["event", "analytics tag ran"])
    shop.page.evaluate("consent.withdraw()")
    assert _data_layer(shop)[-1] == ["consent", "update", DENIED]


def test_consent_mode_works_when_gtag_is_defined_after_the_banner(shop: Shop) -> None:
    shop.visit()
    assert _data_layer(shop) == [["consent", "default", DEFAULT]]
    shop.page.evaluate("window.dataLayer = window.dataLayer || []; window.dataLayer.push(['config', 'G-LATE'])")
    shop.click("customise")
    shop.preferences.get_by_role("switch", name="Functional").check()
    shop.click("save", "preferences")
    expected = {**DENIED, "functionality_storage": "granted", "personalization_storage": "granted"}
    assert _data_layer(shop) == [["consent", "default", DEFAULT], ["config", "G-LATE"], ["consent", "update", expected]]


def test_stored_choice_updates_consent_mode_at_load(shop: Shop) -> None:
    shop.visit()
    shop.click("customise")
    shop.preferences.get_by_role("switch", name="Advertising").check()
    shop.click("save", "preferences")
    shop.visit("<main>Shop</main>" + TAG, head=GTAG_FIRST, csp=_csp(shop))
    shop.page.wait_for_timeout(300)
    advertising = {**DENIED, "ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "granted"}
    assert _data_layer(shop)[2:] == [["consent", "default", DEFAULT], ["consent", "update", advertising]]
    # Tag managers hear of the stored choice too, after the update.
    events = shop.page.evaluate("window.dataLayer.filter(e => e.event === 'consent_update')")
    consent = {"necessary": True, "functional": False, "analytics": False, "advertising": True}
    assert events == [{"event": "consent_update", "consent": consent, "regime": "opt-in"}]
