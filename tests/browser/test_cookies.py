"""The consent cookie (format, attributes, shared domain, re-asking) and deletion of withdrawn categories' cookies."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.support.browser import Shop

EMBEDDING = Path(__file__).resolve().parents[2] / "docs" / "embedding.md"


def parse_consent_cookie(value: str) -> dict[str, str] | None:
    """The embedding guide's backend example: ``key:value`` pairs separated by ``|``."""
    fields = dict(part.split(":", 1) for part in value.split("|") if ":" in part)
    return fields if fields.get("v") == "1" else None


def readme_read_consent() -> Callable[[str | None, int], dict[str, bool] | None]:
    """The backend example from the embedding guide's section "The consent cookie", as documented."""
    section = EMBEDDING.read_text(encoding="utf-8").split("## The consent cookie", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # noqa: S102 (the project's own documentation)
    return namespace["read_consent"]  # type: ignore[no-any-return]


def accepted(shop: Shop) -> tuple[dict[str, Any], dict[str, str]]:
    """A visitor who clicked Accept all: their consent cookie and its fields, once the receipt is in."""
    shop.visit()
    shop.click("accept")
    shop.page.wait_for_function("() => consent.receipt !== null")
    cookie = shop.cookie()
    assert cookie is not None
    fields = parse_consent_cookie(cookie["value"])
    assert fields is not None
    return cookie, fields


def _set_cookies(shop: Shop, *cookies: str) -> None:
    shop.page.evaluate("cookies => cookies.forEach(c => { document.cookie = c; })", list(cookies))


def test_consent_cookie_holds_id_receipt_revision_choices_and_times(shop: Shop) -> None:
    shop.visit()
    shop.click("customise")
    shop.preferences.get_by_role("switch", name="Functional").check()
    shop.click("save", "preferences")
    shop.page.wait_for_function("() => consent.receipt !== null")
    cookie = shop.cookie()
    assert cookie is not None
    assert (cookie["path"], cookie["secure"], cookie["domain"]) == ("/", False, "127.0.0.1")
    assert shop.stored_same_site() == "Lax"
    fields = parse_consent_cookie(cookie["value"])
    assert fields is not None
    (record,) = shop.wait_for_records(1)
    assert fields["id"] == record["consent_id"]
    choices = [fields[key] for key in ("revision", "functional", "analytics", "advertising")]
    assert choices == ["1", "1", "0", "0"]
    given = datetime.fromisoformat(fields["given"])
    assert abs(given - datetime.now(UTC)) < timedelta(minutes=1)
    assert datetime.fromisoformat(fields["expires"]) - given == timedelta(days=180)
    assert abs(cookie["expires"] - (time.time() + 180 * 86400)) < 120
    # The receipt in the cookie is the one the service issued for this visitor.
    history = shop.service.history(fields["id"], receipt=fields["receipt"])
    assert [r["action"] for r in history["records"]] == ["custom"]
    read_consent = readme_read_consent()
    choices = {"necessary": True, "functional": True, "analytics": False, "advertising": False}
    assert read_consent(cookie["value"], 1) == choices
    assert read_consent(cookie["value"], 2) is None and read_consent(None, 1) is None


def test_consent_cookie_is_secure_on_https(browser: Browser, pages: Any) -> None:
    context = browser.new_context(ignore_https_errors=True)
    try:
        shop = Shop(context.new_page(), pages, pages.service)
        shop.visit(secure=True)
        assert shop.page.url.startswith("https://")
        shop.click("accept")
        shop.page.wait_for_function("() => consent.id !== null")
        cookie = shop.cookie()
        assert cookie is not None and cookie["secure"] is True
        assert shop.stored_same_site() == "Lax"
    finally:
        context.close()


def test_consent_cookie_is_shared_on_the_inventory_cookie_domain(shop: Shop) -> None:
    shop.visit(site="boxed", host="www.shop.test", lang="de")
    shop.click("accept")
    shop.page.wait_for_function("() => consent.id !== null")
    cookie = shop.cookie()
    assert cookie is not None and cookie["domain"] == ".shop.test"
    fields = parse_consent_cookie(cookie["value"])
    assert fields is not None and fields["revision"] == "3"


def test_visitor_is_asked_again_when_the_revision_changes_and_keeps_their_consent_id(shop: Shop) -> None:
    shop.visit()
    shop.click("accept")
    shop.page.wait_for_function("() => consent.receipt !== null")
    consent_id = shop.page.evaluate("consent.id")
    shop.visit()
    expect(shop.banner).to_have_count(0)
    cookie = shop.cookie()
    assert cookie is not None
    _set_cookies(shop, "consent=" + cookie["value"].replace("|revision:1|", "|revision:0|") + "; Path=/")
    shop.visit()
    expect(shop.banner).to_be_visible()
    assert shop.page.evaluate("consent.get()") is None
    shop.click("reject")
    records = shop.wait_for_records(2)
    assert [r["consent_id"] for r in records] == [consent_id, consent_id]
    assert [r["revision"] for r in records] == [1, 1]


def test_visitor_is_asked_again_after_consent_max_age_days(shop: Shop) -> None:
    cookie, fields = accepted(shop)
    old = (datetime.now(UTC) - timedelta(days=181)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    _set_cookies(shop, "consent=" + cookie["value"].replace(fields["given"], old) + "; Path=/")
    shop.visit()
    expect(shop.banner).to_be_visible()
    assert shop.page.evaluate("consent.get()") is None


def test_withdrawal_deletes_matching_cookies_on_host_and_parent_domain(shop: Shop) -> None:
    shop.visit(host="www.shop.test")
    shop.click("accept")
    _set_cookies(
        shop,
        "_ga_X1Y2=1; Path=/",  # analytics, prefix _ga, host only
        "_gid=1; Path=/; Domain=shop.test",  # analytics, exact, parent domain
        "_hjSession_42=1; Path=/; Domain=www.shop.test",  # analytics, regex, host domain
        "_fbp=1; Path=/; Domain=.shop.test",  # advertising, exact, parent domain
        "_gcl_au=1; Path=/",  # advertising, prefix
        "_icl_visitor_lang_js=en; Path=/",  # functional: stays granted
        "session=1; Path=/",  # necessary: never deleted
        "_hjSession_x=1; Path=/",  # does not match the regex _hjSession_\d+
        "unrelated=1; Path=/",  # not in the inventory
    )
    shop.page.wait_for_function("() => consent.id !== null")
    shop.page.evaluate("consent.open()")
    shop.preferences.get_by_role("switch", name="Analytics").uncheck()
    shop.preferences.get_by_role("switch", name="Advertising").uncheck()
    shop.click("save", "preferences")
    shop.page.wait_for_function("() => consent.get().analytics === false")
    left = sorted(c["name"] for c in shop.page.context.cookies())
    assert left == ["_hjSession_x", "_icl_visitor_lang_js", "consent", "session", "unrelated"]


def test_a_refused_receipt_starts_a_new_consent_history(shop: Shop) -> None:
    cookie, fields = accepted(shop)
    _set_cookies(shop, "consent=" + cookie["value"].replace(fields["receipt"], "forged") + "; Path=/")
    shop.visit()
    shop.page.evaluate("consent.withdraw()")
    records = shop.wait_for_records(2)
    assert [r["action"] for r in records] == ["accept_all", "withdraw"]
    assert records[0]["consent_id"] != records[1]["consent_id"]
    shop.page.wait_for_function(f"() => consent.id && consent.id !== {fields['id']!r}")
