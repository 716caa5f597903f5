from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from consent.cli import cli
from consent.inventory.sites import CONSENT_COOKIE, InventoryError, load_inventory

ROOT = Path(__file__).resolve().parent.parent

VALID = """\
site: shop
name: Shop Ltd
origins: [https://shop.example]
revision: 3
languages: [en, de]
cookies:
  - name: _ga
    match: prefix
    category: analytics
    provider: Google Analytics
    purpose: {en: Distinguishes visitors., de: Unterscheidet Besucher.}
    expiry: 13 months
  - name: lang
    category: functional
    provider: Shop
    purpose: {en: Language.}
    expiry: session
"""


def write(tmp_path: Path, text: str, name: str = "cookies.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_inventory_is_valid_and_realistic():
    site = load_inventory(ROOT / "cookies.yaml")["demo"]
    assert len(site.cookies) >= 12
    assert {cookie.category for cookie in site.cookies} == {"necessary", "functional", "analytics", "advertising"}
    assert len(site.languages) >= 2
    assert any(cookie.name == "_ga" and cookie.match == "prefix" for cookie in site.cookies)
    for cookie in site.public["cookies"]:
        assert set(cookie["purpose"]) == set(site.languages)


def test_valid_inventory_parses_expiry_and_adds_the_consent_cookie(tmp_path):
    site = load_inventory(write(tmp_path, VALID))["shop"]
    cookies = {cookie["name"]: cookie for cookie in site.public["cookies"]}
    assert cookies["_ga"]["expiry"] == {"text": {"en": "13 months", "de": "13 Monate"}, "seconds": 13 * 30 * 86400}
    assert cookies["lang"]["expiry"]["seconds"] is None
    own = cookies[CONSENT_COOKIE]
    assert own["category"] == "necessary"
    assert own["expiry"]["seconds"] == 180 * 86400
    # Missing translations fall back to the default language, never to nothing.
    assert cookies["lang"]["purpose"] == {"en": "Language.", "de": "Language."}
    assert site.policy_url == "/s/shop/cookies"


def test_hash_is_canonical_and_changes_with_content(tmp_path):
    first = load_inventory(write(tmp_path, VALID))["shop"].hash
    reordered = VALID.replace(
        "origins: [https://shop.example]\nrevision: 3", "revision: 3\norigins: [https://shop.example]"
    )
    assert load_inventory(write(tmp_path, reordered))["shop"].hash == first
    changed = VALID.replace("13 months", "12 months")
    assert load_inventory(write(tmp_path, changed))["shop"].hash != first


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("site: shop", "site: Shop!", 1, "site key must match"),
        ("https://shop.example]", "shop.example/path]", 3, "is not an origin"),
        ("revision: 3", "revision: 3\ncolour: red", 5, "unknown key 'colour'"),
        ("category: analytics", "category: marketing", 9, "unknown category 'marketing'"),
        ("expiry: 13 months", "expiry: 3 fortnights", 12, "unparsable expiry '3 fortnights'"),
        ("name: lang", "name: _ga", 13, "duplicate cookie name '_ga'"),
        ("purpose: {en: Language.}", "purpose: {de: Sprache.}", 16, "missing text for the default language 'en'"),
        ("name: _ga\n    match: prefix", "name: '(['\n    match: regex", 7, "bad regex"),
        ("    provider: Shop\n", "", 13, "provider: missing"),
        ("revision: 3", "revision: 3\ncategories:\n  tracking: {}", 6, "unknown category 'tracking'"),
        ("revision: 3", "revision: 3\ncategories:\n  analytics: {label: {de: Statistik}}", 6, "default language"),
        ("revision: 3", "revision: three", 4, "revision: Not a valid integer"),
        ("languages: [en, de]", "languages: [en, de]\ntexts: {en: {acept_all: OK}}", 6, "unknown text key"),
        ("site: shop", "site: shop\nsite: other", 2, "duplicate key"),
    ],
)
def test_bad_inventory_is_refused_with_file_line_and_reason(tmp_path, old, new, line, message):
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert any(error.startswith(f"{path}:{line}:") and message in error for error in caught.value.errors), (
        caught.value.errors
    )


def test_folder_holds_one_site_per_file_and_refuses_a_site_twice(tmp_path):
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID.replace("site: shop", "site: blog"), "b.yml")
    assert set(load_inventory(tmp_path)) == {"shop", "blog"}
    write(tmp_path, VALID, "c.yaml")
    with pytest.raises(InventoryError, match="already described"):
        load_inventory(tmp_path)


def test_check_command_exits_1_with_located_errors(tmp_path):
    path = write(tmp_path, VALID.replace("category: analytics", "category: marketing"))
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:9: cookies[0].category: unknown category 'marketing'" in result.output
    assert "Traceback" not in result.output


def test_check_command_accepts_a_good_file(tmp_path):
    result = CliRunner().invoke(cli, ["check", str(write(tmp_path, VALID))])
    assert result.exit_code == 0, result.output
    assert "site 'shop', revision 3" in result.output


def test_check_command_warns_of_a_site_without_controller_contact(tmp_path):
    # Valid for the banner, but its ISO 27560 records would have no contact point.
    assert "controller" not in VALID
    result = CliRunner().invoke(cli, ["check", str(write(tmp_path, VALID))])
    assert result.exit_code == 0
    assert "warning: site 'shop' names no controller email or address" in result.output


def test_check_command_does_not_warn_when_the_controller_has_a_contact(tmp_path):
    with_contact = VALID + "controller: {email: dpo@shop.example, address: 1 Main Street Springfield}\n"
    result = CliRunner().invoke(cli, ["check", str(write(tmp_path, with_contact))])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_check_command_names_a_missing_path(tmp_path):
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "no such file or folder" in result.output


def test_service_does_not_start_with_a_bad_inventory(tmp_path, database_url):
    from consent import create_app

    path = write(tmp_path, VALID.replace("13 months", "forever"))
    with pytest.raises(InventoryError, match=f"{path}:12:"):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "INVENTORY": str(path)})


def test_regional_languages_get_their_base_language_texts(tmp_path):
    path = write(tmp_path, VALID.replace("languages: [en, de]", "languages: [en, nl-BE]"))
    site = load_inventory(path)["shop"]
    assert site.public["texts"]["nl-BE"]["accept_all"] == "Alles accepteren"
    analytics = next(c for c in site.public["categories"] if c["key"] == "analytics")
    assert analytics["label"]["nl-BE"] == "Analyse"


@pytest.mark.parametrize(
    "policy_url",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "//evil.example/privacy",
        "/\\evil.example/privacy",
        "https://",
        "ftp://shop.example/privacy",
        "mailto:dpo@shop.example",
    ],
)
def test_policy_url_must_be_http_https_or_relative(tmp_path, policy_url):
    text = VALID.replace("revision: 3", f"revision: 3\npolicy_url: {json.dumps(policy_url)}")
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.errors == [
        f"{path}:5: policy_url: {policy_url!r} is not an https:// or http:// address or a relative path like /privacy"
        + (" (no spaces, control characters or backslashes)" if any(c in policy_url for c in "\t \\") else "")
    ]
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 1 and f"{path}:5: policy_url:" in result.output


@pytest.mark.parametrize(
    "policy_url", ["https://shop.example/privacy#cookies", "http://shop.example/privacy", "/privacy", "privacy.html"]
)
def test_policy_url_accepts_addresses_and_relative_paths(tmp_path, policy_url):
    text = VALID.replace("revision: 3", f"revision: 3\npolicy_url: {json.dumps(policy_url)}")
    assert load_inventory(write(tmp_path, text))["shop"].policy_url == policy_url


def test_service_does_not_start_with_a_javascript_policy_url(tmp_path, database_url):
    from consent import create_app

    path = write(tmp_path, VALID.replace("revision: 3", "revision: 3\npolicy_url: 'javascript:alert(1)'"))
    with pytest.raises(InventoryError, match=f"{path}:5: policy_url"):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "INVENTORY": str(path)})


@pytest.mark.parametrize(
    ("public_url", "kept"),
    [("https://consent.shop.example/", "https://consent.shop.example"), ("http://127.0.0.1:8000/c", None)],
)
def test_a_site_may_name_the_public_address_of_the_service(tmp_path, public_url, kept):
    site = load_inventory(write(tmp_path, VALID.replace("revision: 3", f"revision: 3\npublic_url: {public_url}")))
    assert site["shop"].public_url == (kept or public_url)


@pytest.mark.parametrize("public_url", ["javascript:alert(1)", "consent.example", "https://user@consent.example"])
def test_a_bad_public_address_is_refused(tmp_path, public_url):
    path = write(tmp_path, VALID.replace("revision: 3", f"revision: 3\npublic_url: '{public_url}'"))
    with pytest.raises(InventoryError, match=f"{path}:5: public_url: .* is not the service's address"):
        load_inventory(path)


CONTROLLER = """\
controller:
  name: Shop Ltd
  email: privacy@shop.example
  address: 1 Example Street, Amsterdam
jurisdiction: [EU, US-CA]
"""


def test_controller_and_jurisdiction_are_loaded_beside_the_public_inventory(tmp_path):
    plain = load_inventory(write(tmp_path, VALID, "plain.yaml"))["shop"]
    site = load_inventory(write(tmp_path, VALID + CONTROLLER))["shop"]
    assert site.controller == {
        "name": "Shop Ltd",
        "email": "privacy@shop.example",
        "address": "1 Example Street, Amsterdam",
    }
    assert site.jurisdiction == ("EU", "US-CA") and plain.jurisdiction == ("EU",)
    assert plain.controller == {"name": "Shop Ltd"}
    # Neither is shown to visitors as part of the inventory, so the inventory's hash stays what it was.
    assert site.hash == plain.hash


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("privacy@shop.example", "privacy at shop", 7, "controller.email: Not a valid email address."),
        ("  address:", "  fax: 123\n  address:", 8, "unknown key 'fax' in controller"),
        ("  email: privacy@shop.example\n", "", 5, "controller.email: missing"),
        ("US-CA", "california", 9, "jurisdiction[1]: 'california' is not a country"),
    ],
)
def test_check_refuses_a_bad_controller_or_jurisdiction_with_file_and_line(tmp_path, old, new, line, message):
    path = write(tmp_path, VALID.replace("revision: 3\n", "revision: 3\n" + CONTROLLER.replace(old, new)))
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}: {message}" in result.output, result.output
    assert "Traceback" not in result.output
