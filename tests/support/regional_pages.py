"""The regional pages the browser tests visit, and what they read back from them (ran tags, dataLayer)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from tests.support.browser import Shop

NONCE = "regions-n0nce"
# One blocked tag per optional category: each notes that it ran.
TAGS = "".join(
    f'<script type="text/plain" data-consent="{category}" nonce="{NONCE}">'
    f"(window.ran = window.ran || []).push('{category}');</script>"
    for category in ("functional", "analytics", "advertising")
)
OPT_OUT = "Do Not Sell or Share My Personal Information"
NOTICE = "We use cookies to run this site, remember preferences, measure visits and show ads."
GRANTED = {"functional": True, "analytics": True, "advertising": True}


def visit(shop: Shop, body: str = "", site: str = "world", **options: Any) -> Page:
    """A shop page of ``site`` with the three tags, under a strict policy that lets them run by nonce."""
    csp = shop.pages.strict_csp(f" 'nonce-{NONCE}'")
    return shop.visit(f"<main><h1>Shop</h1>{body}</main>{TAGS}", site=site, csp=csp, **options)


def ran(page: Page) -> list[str]:
    """The tags that ran, in order."""
    return page.evaluate("window.ran || []")  # type: ignore[no-any-return]


def gtag_commands(page: Page) -> list[list[Any]]:
    """The gtag commands in dataLayer (arguments objects), as lists."""
    script = "window.dataLayer.filter(e => e.length !== undefined).map(e => Array.from(e))"
    return page.evaluate(script)  # type: ignore[no-any-return]


def consent_updates(page: Page) -> list[dict[str, Any]]:
    """The tag managers' consent_update events in dataLayer."""
    return page.evaluate("window.dataLayer.filter(e => e.event === 'consent_update')")  # type: ignore[no-any-return]


def states(granted: dict[str, bool]) -> dict[str, str]:
    """Consent Mode's states for the categories granted."""
    g = {c: "granted" if on else "denied" for c, on in granted.items()}
    return {
        "ad_storage": g["advertising"], "ad_user_data": g["advertising"], "ad_personalization": g["advertising"],
        "analytics_storage": g["analytics"], "functionality_storage": g["functional"],
        "personalization_storage": g["functional"], "security_storage": "granted",
    }  # fmt: skip


def event(regime: str, **choices: bool) -> dict[str, Any]:
    return {"event": "consent_update", "consent": {"necessary": True, **choices}, "regime": regime}
