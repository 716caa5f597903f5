"""GET /s/<site>/banner.js: per-site configuration, strong ETag, 304, caching, gzip; and the /demo page."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from consent.embed.banner import CONFIG_MARKER, CONFIG_PLACEHOLDER, minified
from consent.store.models import InventoryVersion, db

ROOT = Path(__file__).resolve().parent.parent


def _config(body: bytes) -> dict[str, Any]:
    """The configuration embedded in a served script: the first value the script declares."""
    match = re.match(rb'\(function\(\)\{"use strict";const \w+=', body)
    assert match, "no configuration in the script"
    config, _ = json.JSONDecoder().raw_decode(body.decode(), match.end())
    return config  # type: ignore[no-any-return]


def test_script_carries_the_site_configuration(client: FlaskClient) -> None:
    response = client.get("/s/demo/banner.js", base_url="https://consent.example")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    config = _config(response.data)
    assert config["site"] == "demo" and config["revision"] == 1
    assert config["api"] == "https://consent.example"
    assert config["languages"] == ["en", "nl"] and config["layout"] == "bar"
    assert config["max_age_days"] == 180 and config["cookie_domain"] is None
    assert config["policy_url"] == "https://consent.example/s/demo/cookies"
    assert config["texts"]["nl"]["accept_all"] == "Alles accepteren"
    assert config["texts"]["en"]["accept_all"] == "Accept all"
    assert [c["key"] for c in config["categories"]] == ["necessary", "functional", "analytics", "advertising"]
    # What withdrawal needs: every non-necessary cookie, with how to match it.
    assert {"name": "_hjSession_\\d+", "match": "regex", "category": "analytics"} in config["cookies"]
    assert len(config["cookies"]) == 12 and all(c["category"] != "necessary" for c in config["cookies"])


def test_each_site_gets_its_own_configuration(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    folder = tmp_path / "sites"
    folder.mkdir()
    demo = (ROOT / "cookies.yaml").read_text(encoding="utf-8")
    (folder / "demo.yaml").write_text(demo, encoding="utf-8")
    other = demo.replace("site: demo", "site: other").replace("revision: 1", "revision: 7")
    (folder / "other.yaml").write_text(other.replace("layout: bar", "layout: box"), encoding="utf-8")
    client = make_app(INVENTORY=str(folder)).test_client()
    demo_config = _config(client.get("/s/demo/banner.js").data)
    other_config = _config(client.get("/s/other/banner.js").data)
    assert (demo_config["site"], demo_config["revision"], demo_config["layout"]) == ("demo", 1, "bar")
    assert (other_config["site"], other_config["revision"], other_config["layout"]) == ("other", 7, "box")


def test_strong_etag_and_304_on_if_none_match(client: FlaskClient) -> None:
    first = client.get("/s/demo/banner.js")
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert first.headers["Cache-Control"] == "public, max-age=300"
    again = client.get("/s/demo/banner.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == "public, max-age=300"
    stale = client.get("/s/demo/banner.js", headers={"If-None-Match": '"0000"'})
    assert stale.status_code == 200 and stale.data == first.data


def test_etag_changes_with_the_inventory(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    before = make_app().test_client().get("/s/demo/banner.js").headers["ETag"]
    bumped = tmp_path / "cookies.yaml"
    bumped.write_text((ROOT / "cookies.yaml").read_text(encoding="utf-8").replace("revision: 1", "revision: 2"))
    after = make_app(INVENTORY=str(bumped)).test_client().get("/s/demo/banner.js", headers={"If-None-Match": before})
    assert after.status_code == 200 and after.headers["ETag"] != before
    assert _config(after.data)["revision"] == 2


def test_gzip_when_accepted_with_its_own_etag(client: FlaskClient) -> None:
    plain = client.get("/s/demo/banner.js")
    zipped = client.get("/s/demo/banner.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"]
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert client.get("/s/demo/banner.js", headers={"If-None-Match": zipped.headers["ETag"]}).status_code == 200
    cached = client.get(
        "/s/demo/banner.js", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
    )
    assert cached.status_code == 304


def test_first_load_fits_the_8_kb_gzip_budget(client: FlaskClient) -> None:
    zipped = client.get("/s/demo/banner.js", headers={"Accept-Encoding": "gzip"})
    assert len(zipped.data) <= 8 * 1024


def test_serving_the_script_remembers_the_inventory_version_shown(app: Flask, client: FlaskClient) -> None:
    client.get("/s/demo/banner.js")
    with app.app_context():
        hashes = db.session.scalars(select(InventoryVersion.hash)).all()
    assert hashes == [app.extensions["consent.sites"]["demo"].hash]


@pytest.mark.parametrize("path", ["/s/nope/banner.js", "/s/DEMO/banner.js"])
def test_unknown_site_is_a_json_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json is not None and response.json["error"]["code"] == "not_found"


def test_served_script_is_minified_with_the_configuration_in_place_of_the_marker(client: FlaskClient) -> None:
    source = (ROOT / "static" / "banner.js").read_text(encoding="utf-8")
    assert source.count(CONFIG_MARKER) == 1
    script = minified(source)
    assert script.count(CONFIG_PLACEHOLDER) == 1 and CONFIG_MARKER not in script
    assert "/*" not in script.split("`")[0] and "\n  " not in script
    served = client.get("/s/demo/banner.js").text
    assert CONFIG_PLACEHOLDER not in served and CONFIG_MARKER not in served
    assert len(script) < len(source) * 0.6


@pytest.mark.parametrize(
    "source", ["(function () {})();", "const a = /*__CONSENT_CONFIG__*/ null, b = /*__CONSENT_CONFIG__*/ null;"]
)
def test_a_source_without_exactly_one_marker_is_refused(source: str) -> None:
    with pytest.raises(RuntimeError, match="exactly once"):
        minified(source)


def test_demo_page_embeds_the_banner_under_a_strict_policy(client: FlaskClient) -> None:
    response = client.get("/demo", base_url="http://shop.localhost:8000")
    assert response.status_code == 200
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", response.headers["Content-Security-Policy"])
    assert nonce is not None
    html = response.text
    assert '<script src="http://shop.localhost:8000/s/demo/banner.js" async></script>' in html
    assert '<script type="text/plain" data-consent="analytics" src="/static/demo/analytics.js">' in html
    assert '<script type="text/plain" data-consent="advertising" src="/static/demo/pixel.js">' in html
    assert f'<script type="text/plain" data-consent="analytics" nonce="{nonce.group(1)}">' in html
    assert 'data-src="https://www.youtube-nocookie.com/embed/' in html
    assert "style=" not in html and "<style" not in html
    with client.get("/static/demo/analytics.js") as script:
        assert script.mimetype == "text/javascript"


def _without_request_id(headers: Any) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers.items() if name != "X-Request-ID"]


@pytest.mark.parametrize("encoding", ["gzip, deflate, br", ""])
def test_a_repeated_request_gets_the_first_answer_again_with_its_own_request_id(
    app: Flask, client: FlaskClient, encoding: str
) -> None:
    headers = {"Accept-Encoding": encoding}
    first = client.get("/s/demo/banner.js", headers=headers)
    replay = app.wsgi_app
    assert len(replay.answers) == 1  # type: ignore[attr-defined]
    again = client.get("/s/demo/banner.js", headers=headers)
    echoed = client.get("/s/demo/banner.js", headers={**headers, "X-Request-ID": "from-the-proxy-1"})
    assert first.status_code == again.status_code == 200
    assert again.data == first.data and _without_request_id(again.headers) == _without_request_id(first.headers)
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", again.headers["X-Request-ID"])
    assert echoed.headers["X-Request-ID"] == "from-the-proxy-1"
    assert len(replay.answers) == 1  # type: ignore[attr-defined]
    # Security headers stay on.
    assert again.headers["X-Content-Type-Options"] == "nosniff"
    assert again.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_a_revalidation_is_replayed_only_for_the_scripts_own_etag(app: Flask, client: FlaskClient) -> None:
    etag = client.get("/s/demo/banner.js").headers["ETag"]
    answers = [client.get("/s/demo/banner.js", headers={"If-None-Match": etag}) for _ in range(3)]
    assert [a.status_code for a in answers] == [304, 304, 304]
    assert _without_request_id(answers[2].headers) == _without_request_id(answers[0].headers)
    assert answers[2].data == b""
    # Weak, listed or stale ETags go through the view, which still answers them rightly.
    assert client.get("/s/demo/banner.js", headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    assert client.get("/s/demo/banner.js", headers={"If-None-Match": f'"old", {etag}'}).status_code == 304
    assert client.get("/s/demo/banner.js", headers={"If-None-Match": '"old"'}).status_code == 200
    assert len(app.wsgi_app.answers) == 2  # type: ignore[attr-defined]


def test_replayed_answers_never_cross_addresses_or_sites(client: FlaskClient) -> None:
    for _ in range(2):
        one = client.get("/s/demo/banner.js", base_url="https://one.example")
        two = client.get("/s/demo/banner.js", base_url="https://two.example")
        assert _config(one.data)["api"] == "https://one.example"
        assert _config(two.data)["api"] == "https://two.example"
    assert client.get("/s/nosuch/banner.js").status_code == 404
    assert client.get("/s/nosuch/banner.js").status_code == 404
    assert client.get("/demo/banner.js").status_code == 404


def test_replayed_answers_are_counted_in_the_latency_metric(client: FlaskClient, admin_headers: Any) -> None:
    def served() -> float:
        text = client.get("/metrics", headers=admin_headers).get_data(as_text=True)
        pattern = (
            r'consent_request_duration_seconds_count\{method="GET",route="/s/<site>/banner.js",status="200"\} (\S+)'
        )
        match = re.search(pattern, text)
        return float(match.group(1)) if match else 0.0

    before = served()
    for _ in range(5):
        client.get("/s/demo/banner.js")
    assert served() == before + 5 >= 5


def test_the_api_address_comes_from_configuration_not_from_host(make_app: Callable[..., Flask]) -> None:
    client = make_app(PUBLIC_URL="https://consent.example.com/").test_client()
    response = client.get("/s/demo/banner.js", headers={"Host": "evil.example"})
    config = _config(gzip.decompress(response.data) if response.headers.get("Content-Encoding") else response.data)
    assert config["api"] == "https://consent.example.com"
    assert config["policy_url"] == "https://consent.example.com/s/demo/cookies"
    assert b"evil.example" not in response.data
    assert response.headers["Vary"] == "Accept-Encoding, Sec-GPC"


def test_a_site_may_name_its_own_public_address(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    inventory = tmp_path / "cookies.yaml"
    demo = (ROOT / "cookies.yaml").read_text(encoding="utf-8")
    inventory.write_text(demo.replace("revision: 1", "revision: 1\npublic_url: https://c.shop.example"), "utf-8")
    client = make_app(INVENTORY=str(inventory), PUBLIC_URL="https://consent.example.com").test_client()
    config = _config(client.get("/s/demo/banner.js", headers={"Host": "evil.example"}).data)
    assert config["api"] == "https://c.shop.example"


def test_without_a_configured_address_the_answer_varies_on_host(client: FlaskClient) -> None:
    for host in ("127.0.0.1:8000", "localhost:8000", "evil.example"):
        response = client.get("/s/demo/banner.js", headers={"Host": host})
        assert _config(response.data)["api"] == f"http://{host}"
        assert set(response.headers["Vary"].split(", ")) == {"Accept-Encoding", "Sec-GPC", "Host"}


@pytest.mark.parametrize("public_url", ["consent.example.com", "javascript:alert(1)", "https://consent.example/?x=1"])
def test_a_bad_public_url_stops_the_start(make_app: Callable[..., Flask], public_url: str) -> None:
    with pytest.raises(ValueError, match="CONSENT_PUBLIC_URL: .* is not the service's address"):
        make_app(PUBLIC_URL=public_url)


def test_outside_the_demo_a_missing_public_url_is_reported_at_start(
    make_app: Callable[..., Flask], capfd: pytest.CaptureFixture[str]
) -> None:
    make_app(TESTING=False)
    assert "CONSENT_PUBLIC_URL is not set: banner.js of demo" in capfd.readouterr().err
    make_app(TESTING=False, PUBLIC_URL="https://consent.example.com")
    assert "CONSENT_PUBLIC_URL" not in capfd.readouterr().err
