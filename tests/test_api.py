from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from consent.inventory.sites import sites
from consent.store.models import ConsentRecord, InventoryVersion, db
from tests.support.consent_log import API_ORIGIN as ORIGIN
from tests.support.consent_log import CONSENTS_URL as URL
from tests.support.consent_log import count, rows


def body(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "action": "custom",
        "choices": {"functional": True, "analytics": False, "advertising": True},
        "revision": 1,
        "language": "nl-BE",
        "page_url": "https://shop.example/products/42?email=a@b.example#reviews",
        "gpc": False,
        "dnt": True,
        **changes,
    }


def test_record_stores_what_the_server_adds(app, client):
    before = datetime.now(UTC)
    response = client.post(
        URL,
        json=body(),
        headers={**ORIGIN, "User-Agent": "Mozilla/5.0 " + "x" * 600},
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8000"
    assert set(response.json) == {"consent_id", "recorded_at", "receipt", "proof"}
    [row] = rows(app)
    assert row.consent_id == response.json["consent_id"]
    assert row.ip == "203.0.113.0"
    assert row.page_url == "https://shop.example/products/42"
    assert len(row.user_agent) == 512
    assert row.language == "nl"
    assert (row.necessary, row.functional, row.analytics, row.advertising) == (True, True, False, True)
    assert (row.gpc, row.dnt) == (False, True)
    assert before - timedelta(seconds=1) <= row.recorded_at <= datetime.now(UTC)
    assert response.json["recorded_at"].endswith("Z")
    with app.app_context():
        assert row.inventory_hash == sites()["demo"].hash
        stored = db.session.get(InventoryVersion, row.inventory_hash)
        assert stored is not None and stored.content["revision"] == 1


@pytest.mark.parametrize(
    ("address", "stored"),
    [
        ("2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
        ("::ffff:198.51.100.200", "198.51.100.0"),
        ("10.1.2.3", "10.1.2.0"),
    ],
)
def test_ip_is_truncated_before_storage(app, client, address, stored):
    assert client.post(URL, json=body(), headers=ORIGIN, environ_base={"REMOTE_ADDR": address}).status_code == 201
    assert rows(app)[0].ip == stored


def test_necessary_is_always_true_and_missing_categories_are_refused(app, client):
    refused = client.post(URL, json=body(choices={"necessary": False}), headers=ORIGIN)
    assert refused.status_code == 422 and "necessary" in refused.json["error"]["fields"]["choices"]
    response = client.post(URL, json=body(choices={"necessary": True}), headers=ORIGIN)
    assert response.status_code == 201
    row = rows(app)[0]
    assert (row.necessary, row.functional, row.analytics, row.advertising) == (True, False, False, False)


def test_text_plain_body_is_accepted_for_send_beacon(app, client):
    response = client.post(URL, data=json.dumps(body()), content_type="text/plain;charset=UTF-8", headers=ORIGIN)
    assert response.status_code == 201
    assert count(app) == 1


def test_replay_returns_200_with_the_same_body_and_one_row(app, client):
    payload = body()
    first = client.post(URL, json=payload, headers=ORIGIN)
    second = client.post(URL, json=payload, headers=ORIGIN)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json == first.json
    assert count(app) == 1


def test_racing_replays_write_one_row(app):
    payload = body()
    answers: list[tuple[int, dict[str, Any]]] = []
    start = threading.Barrier(8)

    def post() -> None:
        client = app.test_client()
        start.wait(timeout=10)
        response = client.post(URL, json=payload, headers=ORIGIN)
        answers.append((response.status_code, response.json))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(status for status, _ in answers) == [200] * 7 + [201]
    # The same answer each time; only the signed head beside the proof may be a newer one.
    for _, answer in answers:
        answer["proof"].pop("head")
    assert len({json.dumps(answer, sort_keys=True) for _, answer in answers}) == 1
    assert count(app) == 1


def test_recording_leaves_its_pooled_connection_transactional(make_app):
    # Recording runs its one statement in autocommit on PostgreSQL; the connection
    # it used must go back to the pool transactional, or a later unit of work on
    # it (an erasure, a purge) would commit statement by statement.
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "hide_parameters": True})
    client = app.test_client()
    assert client.post(URL, json=body(), headers=ORIGIN).status_code == 201
    with app.app_context():
        db.session.execute(delete(ConsentRecord))
        db.session.rollback()
    assert count(app) == 1


def test_a_change_of_mind_is_a_new_record_under_the_same_consent_id(app, client):
    first = client.post(URL, json=body(action="accept_all", choices={}), headers=ORIGIN).json
    second = client.post(
        URL,
        json=body(action="withdraw", choices={}, consent_id=first["consent_id"], receipt=first["receipt"]),
        headers=ORIGIN,
    )
    assert second.status_code == 201
    assert second.json["consent_id"] == first["consent_id"]
    assert [row.action for row in rows(app)] == ["accept_all", "withdraw"]


@pytest.mark.parametrize("receipt", [None, "", "forged.receipt", "OTHER"])
def test_consent_id_without_its_receipt_is_refused(app, client, receipt):
    mine = client.post(URL, json=body(), headers=ORIGIN).json
    other = client.post(URL, json=body(), headers=ORIGIN).json
    if receipt == "OTHER":
        receipt = other["receipt"]
    fields = {"consent_id": mine["consent_id"]} | ({"receipt": receipt} if receipt is not None else {})
    response = client.post(URL, json=body(**fields), headers=ORIGIN)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert count(app) == 2


def test_receipt_from_another_secret_key_is_refused(make_app):
    issuing = make_app(SECRET_KEY="another-key")
    receipt = issuing.test_client().post(URL, json=body(), headers=ORIGIN).json
    checking = make_app()
    forged = body(consent_id=receipt["consent_id"], receipt=receipt["receipt"])
    response = checking.test_client().post(URL, json=forged, headers=ORIGIN)
    assert response.status_code == 403


def test_foreign_origin_is_refused_and_writes_nothing(app, client):
    response = client.post(URL, json=body(), headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert count(app) == 0


def test_missing_origin_needs_an_admin_token(app, client, admin_headers):
    assert client.post(URL, json=body()).status_code == 403
    assert client.post(URL, json=body(), headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.post(URL, json=body(), headers=admin_headers).status_code == 201
    assert count(app) == 1


def test_preflight_allows_exactly_the_declared_origins(client):
    allowed = client.options(URL, headers={**ORIGIN, "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN["Origin"]
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    refused = client.options(URL, headers={"Origin": "http://localhost:9999", "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ("{", "application/json", 400, "malformed"),
        ("[1, 2]", "application/json", 400, "malformed"),
        ("", "text/plain", 400, "malformed"),
        (b"\xff\xfe", "text/plain", 400, "malformed"),
        ("{}", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("{}", "text/html", 415, "unsupported_media_type"),
        (json.dumps({"pad": "x" * 17000}), "application/json", 413, "too_large"),
    ],
)
def test_malformed_requests_get_json_errors_and_write_nothing(app, client, data, content_type, status, code):
    response = client.post(URL, data=data, content_type=content_type, headers=ORIGIN)
    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert count(app) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_id": "short"}, "event_id"),
        ({"event_id": None}, "event_id"),
        ({"action": "accept_some"}, "action"),
        ({"choices": {"marketing": True}}, "choices"),
        ({"choices": {"analytics": "yes"}}, "choices"),
        ({"choices": None}, "choices"),
        ({"revision": "1"}, "revision"),
        ({"revision": 0}, "revision"),
        ({"revision": 7}, "revision"),
        ({"page_url": "javascript:alert(1)"}, "page_url"),
        ({"page_url": "https://x.example/" + "a" * 3000}, "page_url"),
        ({"consent_id": "not-a-uuid", "receipt": "x"}, "consent_id"),
        ({"gpc": "false"}, "gpc"),
        ({"action": "reject_all", "choices": {"analytics": True}}, "choices"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_values_are_422_with_a_message_per_field(app, client, changes, field):
    response = client.post(URL, json=body(**changes), headers=ORIGIN)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    assert count(app) == 0


def test_unknown_site_is_404(client):
    response = client.post("/api/v1/sites/nope/consents", json=body(), headers=ORIGIN)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_inventory_json_with_etag(client):
    response = client.get("/api/v1/sites/demo/inventory")
    assert response.status_code == 200
    document = response.json
    assert document["revision"] == 1 and len(document["hash"]) == 64
    assert [category["key"] for category in document["categories"]] == [
        "necessary",
        "functional",
        "analytics",
        "advertising",
    ]
    ga = next(cookie for cookie in document["cookies"] if cookie["name"] == "_ga")
    assert ga["expiry"] == {"text": {"en": "13 months", "nl": "13 maanden"}, "seconds": 13 * 30 * 86400}
    assert ga["provider"] == "Google Analytics"
    again = client.get("/api/v1/sites/demo/inventory", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_history_with_receipt_header_or_link_or_admin(client, admin_headers):
    first = client.post(URL, json=body(action="accept_all", choices={}), headers=ORIGIN).json
    client.post(URL, json=body(), headers=ORIGIN)  # someone else
    path = f"{URL}/{first['consent_id']}"
    by_header = client.get(path, headers={"X-Consent-Receipt": first["receipt"], **ORIGIN})
    assert by_header.status_code == 200
    assert by_header.headers["Access-Control-Allow-Origin"] == ORIGIN["Origin"]
    assert [record["action"] for record in by_header.json["records"]] == ["accept_all"]
    by_link = client.get(path, query_string={"receipt": first["receipt"]})
    assert by_link.json == by_header.json
    assert "attachment" in by_link.headers["Content-Disposition"]
    assert client.get(path, headers=admin_headers).json == by_header.json


def test_history_refuses_without_or_with_a_foreign_receipt(client):
    mine = client.post(URL, json=body(), headers=ORIGIN).json
    other = client.post(URL, json=body(), headers=ORIGIN).json
    path = f"{URL}/{mine['consent_id']}"
    assert client.get(path).status_code == 403
    assert client.get(path, headers={"X-Consent-Receipt": other["receipt"]}).status_code == 403
    assert (
        client.get(path, headers={"X-Consent-Receipt": mine["receipt"], "Origin": "https://evil.example"}).status_code
        == 403
    )


def test_history_of_an_unknown_consent_id_is_404_for_an_admin(client, admin_headers):
    assert client.get(f"{URL}/{uuid.uuid4()}", headers=admin_headers).status_code == 404
