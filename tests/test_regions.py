"""Regions: the inventory's regimes and their lookup, and where a request's region comes from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from consent.config import ConfigurationError
from consent.inventory.regimes import EEA, EU, RegionPolicy
from consent.inventory.sites import InventoryError, load_inventory
from consent.web.regions import configured_source, locate, region_of
from tests.support.regions import REGIONS, geoip_file, regional_inventory

BASE = """\
site: shop
name: Shop Ltd
origins: [https://shop.example]
revision: 3
languages: [en, de]
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "cookies.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    return load_inventory(path)["shop"]


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, text)
    return caught.value.errors


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "regions:\n  US-CA: opt-out\n  us: notice\n",
            8,
            "'us' is not a country (DE), a subdivision (US-CA), EU or EEA",
        ),
        ("regions:\n  XX: opt-in\n", 7, "'XX' is not an ISO 3166-1 country code"),
        ("regions:\n  US-CALIF: opt-out\n", 7, "is not a country (DE), a subdivision (US-CA)"),
        ("regions:\n  DE: optin\n", 7, "'optin' is not a regime (one of opt-in, opt-out, notice, none)"),
        ("regions:\n  DE: 3\n", 7, "3 is not a regime"),
        ("regions: [DE]\n", 6, "regions: Not a valid mapping type."),
        ("default_regime: strict\n", 6, "default_regime: 'strict' is not a regime"),
        ("reask_after_refusal_days: -1\n", 6, "reask_after_refusal_days:"),
        ("reask_after_refusal_days: '180'\n", 6, "reask_after_refusal_days: Not a valid integer."),
        ("purposes_revision: 4\n", 6, "purposes_revision: 4 is above the site's revision 3"),
        ("purposes_revision: 0\n", 6, "purposes_revision:"),
        ("consent_mode:\n  wait_for_update: 20000\n", 7, "consent_mode.wait_for_update:"),
        ("consent_mode:\n  ads_data_redaction: 1\n", 7, "consent_mode.ads_data_redaction: Not a valid boolean."),
        ("consent_mode:\n  region: [US]\n", 7, "unknown key 'region' in consent_mode"),
        ("texts:\n  en: {opt_out: Opt out}\n", 7, "text key 'opt_out' is used only by a site with regions"),
        ("regions: {US: opt-out}\ntexts:\n  en: {opt_outt: x}\n", 8, "unknown text key 'opt_outt'"),
    ],
)
def test_bad_region_settings_are_located(tmp_path: Path, text: str, line: int, message: str) -> None:
    found = errors(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'cookies.yaml'}:{line}: ") and message in found[0], found


def test_consent_check_names_the_file_and_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from consent.cli import cli

    path = tmp_path / "cookies.yaml"
    path.write_text(BASE + "regions:\n  US-CA: opt-out\n  EU: optin\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:8: regions.EU: 'optin' is not a regime" in result.output


def test_a_site_without_region_keys_is_opt_in_everywhere_and_its_inventory_is_unchanged(tmp_path: Path) -> None:
    site = load(tmp_path, "")
    assert not site.policy.configured and not site.policy.regional
    assert site.policy.regime_for("US-CA") == site.policy.regime_for(None) == "opt-in"
    assert "regimes" not in site.public
    assert "opt_out" not in site.public["texts"]["en"]


def test_the_default_regime_is_the_strictest_the_site_uses(tmp_path: Path) -> None:
    assert load(tmp_path, "regions: {US: notice, JP: none}\n").policy.default_regime == "notice"
    assert load(tmp_path, "regions: {US: notice, US-CA: opt-out}\n").policy.regime_for("FR") == "opt-out"
    assert load(tmp_path, "regions: {US: notice, DE: opt-in}\n").policy.regime_for(None) == "opt-in"
    chosen = load(tmp_path, "regions: {DE: opt-in}\ndefault_regime: none\n").policy
    assert chosen.regime_for("BR") == "none" and chosen.regime_for("DE") == "opt-in"


def test_yaml_country_codes_that_look_like_booleans_stay_countries(tmp_path: Path) -> None:
    # NO (Norway) and other YAML 1.1 booleans are plain strings in YAML 1.2.
    policy = load(tmp_path, "regions:\n  NO: opt-out\n").policy
    assert policy.regime_for("NO") == "opt-out"


def test_the_lookup_goes_subdivision_country_group_default() -> None:
    policy = RegionPolicy(
        regions={"US-CA": "opt-out", "US": "notice", "EU": "opt-in", "EEA": "notice", "FR": "none"},
        default_regime="opt-out",
    )
    assert policy.regime_for("US-CA") == "opt-out"
    assert policy.regime_for("US-TX") == "notice"  # the country
    assert policy.regime_for("US") == "notice"
    assert policy.regime_for("DE") == "opt-in"  # EU, the narrower group, before EEA
    assert policy.regime_for("DE-BY") == "opt-in"
    assert policy.regime_for("NO") == "notice"  # EEA only
    assert policy.regime_for("FR") == "none"  # the country's own entry before its group
    assert policy.regime_for("BR") == "opt-out" and policy.regime_for(None) == "opt-out"


def test_consent_mode_regions_expand_the_groups() -> None:
    policy = RegionPolicy(regions={"EU": "opt-in", "GB": "opt-in", "US-CA": "opt-out", "JP": "none", "US": "notice"})
    mode = policy.consent_mode()
    assert mode["granted"] is False  # the default regime is the strictest: opt-in
    by_granted = {entry["granted"]: set() for entry in mode["regions"]}
    for entry in mode["regions"]:
        by_granted[entry["granted"]] |= set(entry["region"])
    assert by_granted[False] == {*EU, "GB"}
    assert by_granted[True] == {"US-CA", "JP", "US"}
    # One entry per regime mapped, strictest first.
    assert [entry["granted"] for entry in mode["regions"]] == [False, True, True, True]
    assert len(EU) == 27 and set(EEA) - set(EU) == {"IS", "LI", "NO"}


@pytest.mark.parametrize(
    ("country", "subdivision", "region"),
    [
        ("DE", None, "DE"),
        ("de", None, "DE"),
        (" US ", "CA", "US-CA"),
        ("US", "US-CA", "US-CA"),
        ("US", "us-ca", "US-CA"),
        ("US", "MX-CA", "US"),  # a subdivision of another country
        ("US", "CALIF", "US"),
        ("US", "", "US"),
        ("XX", None, None),
        ("T1", None, None),
        ("EU", None, None),
        ("", "CA", None),
        (None, None, None),
        ("DEU", None, None),
        ("D3", None, None),
    ],
)
def test_region_values_are_a_country_and_subdivision_or_unknown(
    country: str | None, subdivision: str | None, region: str | None
) -> None:
    assert region_of(country, subdivision) == region


@pytest.mark.parametrize(
    ("setting", "headers"),
    [
        ({"REGION_HEADER": "cloudflare"}, ("CF-IPCountry",)),
        ({"REGION_HEADER": "cloudfront"}, ("CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Region")),
        ({"REGION_HEADER": "Vercel"}, ("X-Vercel-IP-Country", "X-Vercel-IP-Country-Region")),
        ({"REGION_HEADER": "x-vercel-ip-country"}, ("x-vercel-ip-country", "X-Vercel-IP-Country-Region")),
        ({"REGION_HEADER": "X-Country"}, ("X-Country",)),
        ({"REGION_HEADER": "X-Country", "REGION_SUBDIVISION_HEADER": "X-State"}, ("X-Country", "X-State")),
        ({}, ()),
    ],
)
def test_header_settings(setting: dict[str, str], headers: tuple[str, ...]) -> None:
    assert configured_source(setting).headers == headers


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"REGION_HEADER": "X Country"}, "CONSENT_REGION_HEADER: 'X Country' is not a header name"),
        ({"REGION_HEADER": "X-C", "REGION_SUBDIVISION_HEADER": "a:b"}, "CONSENT_REGION_SUBDIVISION_HEADER"),
        ({"REGION_SUBDIVISION_HEADER": "X-State"}, "needs CONSENT_REGION_HEADER"),
        ({"GEOIP_DATABASE": "/nonexistent/places.mmdb"}, "/nonexistent/places.mmdb: no such file"),
    ],
)
def test_bad_region_settings_stop_the_start(setting: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        configured_source(setting)


def test_a_file_that_is_no_mmdb_stops_the_start(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a MaxMind database" * 10)
    with pytest.raises(ConfigurationError, match="not a readable MaxMind database"):
        make_app(GEOIP_DATABASE=str(junk))


def _located(app: Flask, headers: dict[str, str] | None = None, address: str = "127.0.0.1"):
    with app.test_request_context(headers=headers or {}, environ_base={"REMOTE_ADDR": address}):
        from flask import request

        return locate(request)


def test_an_untrusted_region_header_is_ignored(make_app: Callable[..., Flask]) -> None:
    app = make_app()  # no CONSENT_REGION_HEADER
    located = _located(app, {"CF-IPCountry": "US", "CloudFront-Viewer-Country": "US", "X-Vercel-IP-Country": "US"})
    assert located.region is None and not located.from_address
    # Trusting one header does not make another one trusted.
    cloudflare = make_app(REGION_HEADER="cloudflare")
    assert _located(cloudflare, {"X-Vercel-IP-Country": "US", "CloudFront-Viewer-Country": "JP"}).region is None
    assert _located(cloudflare, {"CF-IPCountry": "JP"}).region == "JP"


def test_subdivision_headers(make_app: Callable[..., Flask]) -> None:
    cloudfront = make_app(REGION_HEADER="cloudfront")
    both = {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "CA"}
    assert _located(cloudfront, both).region == "US-CA"
    assert _located(cloudfront, {"CloudFront-Viewer-Country": "US"}).region == "US"
    custom = make_app(REGION_HEADER="X-Country", REGION_SUBDIVISION_HEADER="X-State")
    assert _located(custom, {"X-Country": "US", "X-State": "US-CO"}).region == "US-CO"
    # A Cloudflare country with someone's own subdivision header is only trusted as configured.
    assert _located(make_app(REGION_HEADER="cloudflare"), {"CF-IPCountry": "US", "X-State": "CA"}).region == "US"


def test_geoip_finds_the_region_from_the_client_address(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(GEOIP_DATABASE=str(geoip_file(tmp_path)))
    assert _located(app, address="198.51.100.23").region == "US-CA"
    assert _located(app, address="203.0.113.9").region == "DE"
    assert _located(app, address="192.0.2.1").region == "JP-13"
    assert _located(app, address="2001:db8::7").region == "US-CO"
    unknown = _located(app, address="10.1.2.3")
    assert unknown.region is None and unknown.from_address
    assert _located(app, address="not-an-address").region is None


def test_a_trusted_header_comes_before_geoip(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(REGION_HEADER="cloudflare", GEOIP_DATABASE=str(geoip_file(tmp_path)))
    by_header = _located(app, {"CF-IPCountry": "JP"}, address="198.51.100.23")
    assert by_header.region == "JP" and not by_header.from_address
    # A header with no usable value (Tor, unknown) leaves it to the address.
    fallback = _located(app, {"CF-IPCountry": "T1"}, address="198.51.100.23")
    assert fallback.region == "US-CA" and fallback.from_address


def test_the_demo_regions_example_loads(tmp_path: Path) -> None:
    site = load_inventory(regional_inventory(tmp_path))["demo"]
    assert site.policy.configured and site.policy.reask_after_refusal_days == 120
    assert site.policy.regime_for("US-CA") == "opt-out" and site.policy.regime_for("US-NY") == "notice"
    assert site.policy.regime_for("JP") == "none" and site.policy.regime_for("AT") == "opt-in"
    assert site.policy.default_regime == "opt-in"
    assert site.public["regimes"]["consent_mode"]["url_passthrough"] is True
    assert site.public["texts"]["nl"]["opt_out"] == "Mijn persoonsgegevens niet verkopen of delen"
    assert REGIONS.strip().startswith("regions:")
