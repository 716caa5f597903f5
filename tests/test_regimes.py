"""Regimes served and recorded: banner.js per visitor region and Sec-GPC, and what a record carries."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from consent.inventory.regimes import EU
from consent.ledger.canonical import ENTRY_FIELDS, HASHED_FIELDS, entry, record_hash
from consent.store.models import ConsentRecord, db
from consent.timestamps import iso
from consent.verify.live import sql_canonical
from tests.support.consent_log import choice, run, send
from tests.support.regions import geoip_file, regional_inventory

CA = {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "CA"}
NY = {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "NY"}
DE = {"CloudFront-Viewer-Country": "DE"}
JP = {"CloudFront-Viewer-Country": "JP"}


def _config(response: Any) -> dict[str, Any]:
    """The configuration inside a served script."""
    body = gzip.decompress(response.data) if response.headers.get("Content-Encoding") == "gzip" else response.data
    match = re.match(rb'\(function\(\)\{"use strict";const \w+=', body)
    assert match, "no configuration in the script"
    config, _ = json.JSONDecoder().raw_decode(body.decode(), match.end())
    return config  # type: ignore[no-any-return]


@pytest.fixture
def regional(make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
    """The demo site with regions, behind CloudFront."""
    return make_app(
        INVENTORY=str(regional_inventory(tmp_path)), REGION_HEADER="cloudfront", PUBLIC_URL="https://consent.example"
    )


@pytest.fixture
def regional_client(regional: Flask) -> FlaskClient:
    return regional.test_client()


def banner(client: FlaskClient, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return client.get("/s/demo/banner.js", headers=headers or {}, **kwargs)


@pytest.mark.parametrize(
    ("headers", "regime", "region", "extra_texts"),
    [
        (CA, "opt-out", "US-CA", {"notice", "opt_out", "ok"}),
        (NY, "notice", "US-NY", {"notice", "ok"}),
        (DE, "opt-in", "DE", set()),
        (JP, "none", "JP", set()),
        ({}, "opt-in", None, set()),
        ({"CloudFront-Viewer-Country": "XX"}, "opt-in", None, set()),
    ],
)
def test_the_script_carries_the_visitors_regime(
    regional_client: FlaskClient, headers: dict[str, str], regime: str, region: str | None, extra_texts: set[str]
) -> None:
    config = _config(banner(regional_client, headers))
    assert (config["regime"], config["region"], config["sec_gpc"]) == (regime, region, False)
    assert config["reask_days"] == 120 and config["purposes_revision"] == 1
    new_keys = {"notice", "opt_out", "ok"}
    for texts in config["texts"].values():
        assert set(texts) & new_keys == extra_texts
        assert {"accept_all", "reject_all", "customise", "withdraw"} <= set(texts)
    if "opt_out" in extra_texts:
        assert config["texts"]["en"]["opt_out"] == "Do Not Sell or Share My Personal Information"
        assert config["texts"]["nl"]["ok"] == "OK"


def test_consent_mode_defaults_per_region(regional_client: FlaskClient) -> None:
    mode = _config(banner(regional_client, CA))["consent_mode"]
    assert (mode["wait_for_update"], mode["ads_data_redaction"], mode["url_passthrough"]) == (800, False, True)
    assert mode["granted"] is False  # unknown regions get the strictest regime the site uses: opt-in
    denied = next(entry for entry in mode["regions"] if not entry["granted"])
    granted = next(entry for entry in mode["regions"] if entry["granted"] and "US-CA" in entry["region"])
    assert set(denied["region"]) == {*EU, "GB", "NO"}
    assert set(granted["region"]) == {"US-CA", "US-CO"}
    # The same for every visitor: it is the site's mapping, not the visitor's region.
    assert _config(banner(regional_client, DE))["consent_mode"] == mode


def test_sec_gpc_reaches_the_script(regional_client: FlaskClient, client: FlaskClient) -> None:
    assert _config(banner(regional_client, {**CA, "Sec-GPC": "1"}))["sec_gpc"] is True
    assert _config(banner(regional_client, {**CA, "Sec-GPC": "0"}))["sec_gpc"] is False
    # A site without regions reads it too (GPC refuses advertising by default in opt-in).
    plain = _config(banner(client, {"Sec-GPC": "1"}))
    assert plain["sec_gpc"] is True and plain["regime"] == "opt-in" and plain["region"] is None


def test_answers_vary_on_the_trusted_headers_and_sec_gpc(regional_client: FlaskClient) -> None:
    response = banner(regional_client, CA)
    assert set(response.headers["Vary"].split(", ")) == {
        "Accept-Encoding", "Sec-GPC", "CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Region",
    }  # fmt: skip
    assert response.headers["Cache-Control"] == "public, max-age=300"


def test_a_site_without_regions_does_not_vary_on_region_headers(make_app: Callable[..., Flask]) -> None:
    client = make_app(REGION_HEADER="cloudfront", PUBLIC_URL="https://consent.example").test_client()
    one, two = banner(client, CA), banner(client, DE)
    assert one.headers["Vary"] == "Accept-Encoding, Sec-GPC"
    assert one.data == two.data and _config(one)["region"] is None


def test_each_variant_has_its_own_etag_and_304(regional_client: FlaskClient) -> None:
    variants = [CA, NY, DE, {**CA, "Sec-GPC": "1"}, {}]
    etags = [banner(regional_client, headers).headers["ETag"] for headers in variants]
    assert len(set(etags)) == len(variants)
    for headers, etag in zip(variants, etags, strict=True):
        assert banner(regional_client, {**headers, "If-None-Match": etag}).status_code == 304
    # One region's ETag is not another's: the other variant is sent whole.
    other = banner(regional_client, {**DE, "If-None-Match": etags[0]})
    assert other.status_code == 200 and _config(other)["region"] == "DE"


def test_replay_never_hands_one_regions_answer_to_another(regional: Flask, regional_client: FlaskClient) -> None:
    # The first answers store the inventory version; from then on answers are replayed.
    for _ in range(3):
        for headers, regime in ((CA, "opt-out"), (DE, "opt-in"), (JP, "none"), (NY, "notice")):
            for gpc in ("1", None):
                sent = {**headers, **({"Sec-GPC": gpc} if gpc else {})}
                config = _config(banner(regional_client, sent))
                assert config["regime"] == regime and config["sec_gpc"] is (gpc == "1")
    replay = regional.wsgi_app
    assert len(replay.answers) == 8  # type: ignore[attr-defined]


def test_geoip_answers_are_private_and_never_replayed(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(INVENTORY=str(regional_inventory(tmp_path)), GEOIP_DATABASE=str(geoip_file(tmp_path)))
    client = app.test_client()
    for _ in range(3):
        california = banner(client, environ_base={"REMOTE_ADDR": "198.51.100.23"})
        germany = banner(client, environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert _config(california)["regime"] == "opt-out" and _config(germany)["regime"] == "opt-in"
        assert california.headers["Cache-Control"].startswith("private")
        assert "CF-IPCountry" not in california.headers["Vary"]
    assert len(app.wsgi_app.answers) == 0  # type: ignore[attr-defined]
    # A 304 still works per address.
    etag = banner(client, environ_base={"REMOTE_ADDR": "198.51.100.23"}).headers["ETag"]
    again = banner(client, {"If-None-Match": etag}, environ_base={"REMOTE_ADDR": "198.51.100.99"})
    assert again.status_code == 304
    assert banner(client, {"If-None-Match": etag}, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200


def stored(app: Flask) -> list[ConsentRecord]:
    with app.app_context():
        rows = list(db.session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)))
        db.session.expunge_all()
        return rows


def post(client: FlaskClient, headers: dict[str, str], address: str = "127.0.0.1", **body: Any) -> Any:
    """Record a choice from ``address`` with ``headers``, as the banner would."""
    return client.post(
        "/api/v1/sites/demo/consents",
        data=json.dumps(choice(**body)),
        headers={"Origin": "http://localhost:8000", **headers},
        content_type="text/plain",
        environ_base={"REMOTE_ADDR": address},
    )


@pytest.mark.parametrize(
    ("headers", "regime", "region", "sec_gpc"),
    [
        (CA, "opt-out", "US-CA", False),
        ({**CA, "Sec-GPC": "1"}, "opt-out", "US-CA", True),
        (NY, "notice", "US-NY", False),
        (DE, "opt-in", "DE", False),
        ({}, "opt-in", None, False),
        ({"CF-IPCountry": "JP"}, "opt-in", None, False),  # not the trusted header
    ],
)
def test_the_record_carries_what_the_server_derived(
    regional: Flask,
    regional_client: FlaskClient,
    headers: dict[str, str],
    regime: str,
    region: str | None,
    sec_gpc: bool,
) -> None:
    response = post(regional_client, headers)
    assert response.status_code == 201, response.json
    (record,) = stored(regional)
    assert (record.regime, record.region, record.sec_gpc) == (regime, region, sec_gpc)
    assert record.gpc is False  # what the browser reported stays its own
    assert record_hash({name: getattr(record, name) for name in ENTRY_FIELDS}) == record.record_hash


@pytest.mark.parametrize("field", ["regime", "region", "sec_gpc"])
def test_the_body_cannot_set_regime_region_or_sec_gpc(
    regional: Flask, regional_client: FlaskClient, field: str
) -> None:
    response = post(regional_client, CA, **{field: "opt-in" if field != "sec_gpc" else True})
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]
    assert stored(regional) == []


def test_a_site_without_regions_records_opt_in_and_the_region(make_app: Callable[..., Flask]) -> None:
    app = make_app(REGION_HEADER="cloudfront")
    assert post(app.test_client(), {**CA, "Sec-GPC": "1"}).status_code == 201
    (record,) = stored(app)
    assert (record.regime, record.region, record.sec_gpc) == ("opt-in", "US-CA", True)


def test_geoip_decides_the_recorded_region(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(INVENTORY=str(regional_inventory(tmp_path)), GEOIP_DATABASE=str(geoip_file(tmp_path)))
    client = app.test_client()
    assert post(client, {}, "198.51.100.23").status_code == 201
    (record,) = stored(app)
    assert (record.regime, record.region, record.ip) == ("opt-out", "US-CA", "198.51.100.0")


def test_geoip_reads_the_address_behind_trusted_proxies(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(
        INVENTORY=str(regional_inventory(tmp_path)), GEOIP_DATABASE=str(geoip_file(tmp_path)), TRUSTED_PROXIES=1
    )
    client = app.test_client()
    forwarded = {"X-Forwarded-For": "198.51.100.23"}
    assert post(client, forwarded, "203.0.113.9").status_code == 201
    assert [record.region for record in stored(app)] == ["US-CA"]


@pytest.mark.parametrize(
    ("choices", "stored_choices"),
    [
        ({}, (True, True, False)),
        ({"advertising": False}, (True, True, False)),
        ({"analytics": False}, (True, False, False)),
        ({"functional": False, "analytics": False, "advertising": False}, (False, False, False)),
    ],
)
def test_opt_out_refuses_advertising_and_keeps_the_rest_as_posted(
    regional: Flask, regional_client: FlaskClient, choices: dict[str, bool], stored_choices: tuple[bool, ...]
) -> None:
    response = post(regional_client, CA, action="opt_out", choices=choices, gpc=True)
    assert response.status_code == 201, response.json
    (record,) = stored(regional)
    assert (record.functional, record.analytics, record.advertising) == stored_choices
    assert record.action == "opt_out" and record.necessary is True and record.gpc is True


def test_opt_out_granting_advertising_is_a_contradiction(regional: Flask, regional_client: FlaskClient) -> None:
    response = post(regional_client, CA, action="opt_out", choices={"advertising": True})
    assert response.status_code == 422
    assert "opt_out means advertising: false" in response.json["error"]["fields"]["choices"][0]
    assert stored(regional) == []


def test_records_from_before_regions_keep_their_hashes(regional: Flask, regional_client: FlaskClient) -> None:
    """A record without the regional fields hashes as it always did: the three are appended only when set."""
    assert send(regional_client, choice()).status_code == 201
    (record,) = stored(regional)
    old = {name: getattr(record, name) for name in HASHED_FIELDS}
    carried = {**old, "regime": None, "region": None, "sec_gpc": None}
    assert record_hash(old) == record_hash(carried) != record.record_hash
    # The hash of a record made before regions, as the previous release wrote it (same values, no regional fields).
    entry = json.dumps(
        [iso(old[name]) if name == "recorded_at" else old[name] for name in HASHED_FIELDS],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert hashlib.sha256(b"\x00" + entry.encode()).hexdigest() == record_hash(old)


def test_the_live_log_with_regional_records_verifies(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(
        INVENTORY=str(regional_inventory(tmp_path)), REGION_HEADER="cloudfront", SEAL_INTERVAL=0, SEAL_GRACE=0
    )
    client = app.test_client()
    for headers in (CA, {**NY, "Sec-GPC": "1"}, {}, DE):
        assert post(client, headers).status_code == 201
    assert run(app, "seal").exit_code == 0
    result = run(app, "verify", "--site", "demo")
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.execute(
            ConsentRecord.__table__.update().where(ConsentRecord.region == "US-NY").values(region="US-CA")
        )
        db.session.commit()
    changed = run(app, "verify", "--site", "demo")
    assert changed.exit_code == 1 and "changed" in changed.output


def test_the_databases_canonical_json_of_a_regional_record_is_the_services(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """The live verify hashes in SQL; a regional record must not need the slow second look in Python."""
    app = make_app(INVENTORY=str(regional_inventory(tmp_path)), REGION_HEADER="cloudfront")
    client = app.test_client()
    for headers in (CA, {**NY, "Sec-GPC": "1"}, {"CloudFront-Viewer-Country": "T1"}):
        assert post(client, headers).status_code == 201
    assert send(client, choice()).status_code == 201
    with app.app_context():
        db.session.execute(
            ConsentRecord.__table__.update()
            .where(ConsentRecord.id == stored(app)[-1].id)
            .values(regime=None, region=None, sec_gpc=None)
        )
        db.session.commit()
        dialect = db.engine.dialect.name
        texts = db.session.execute(text(f"SELECT {sql_canonical(dialect)} FROM consent_records ORDER BY id")).scalars()
        in_sql = list(texts)
    expected = [entry({name: getattr(record, name) for name in ENTRY_FIELDS}).decode() for record in stored(app)]
    assert in_sql == expected
    assert expected[-1].endswith("false,false]") and ',"opt-in",null,false]' in expected[2]


@pytest.mark.parametrize(
    "value", ["", " ", "XX", "T1", "A1", "us-ca", "US-CA-XX", "ÄÖ", "D", "12", "US;DROP TABLE", "U" * 200]
)
def test_odd_region_header_values_are_an_unknown_or_plain_region_never_an_error(
    regional: Flask, regional_client: FlaskClient, value: str
) -> None:
    headers = {"CloudFront-Viewer-Country": value, "CloudFront-Viewer-Country-Region": value, "Sec-GPC": value}
    response = banner(regional_client, headers)
    assert response.status_code == 200
    config = _config(response)
    assert config["region"] in (None, "US-CA")
    assert config["sec_gpc"] is False
    recorded = post(regional_client, headers)
    assert recorded.status_code == 201, recorded.json
    (record,) = stored(regional)
    assert record.region == config["region"] and record.regime == config["regime"]
