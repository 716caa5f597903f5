from __future__ import annotations

import json
import uuid

import pytest

from consent import create_app
from consent.config import DEFAULT_SECRET_KEY, ConfigurationError
from tests.support.service_config import ROOT


def test_security_headers_on_json_responses(client):
    response = client.get("/api/v1/sites/demo/inventory")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_security_headers_on_error_responses(client):
    response = client.get("/nowhere")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"ADMIN_TOKENS": "t"}, "CONSENT_SECRET_KEY"),
        ({"SECRET_KEY": DEFAULT_SECRET_KEY, "ADMIN_TOKENS": "t"}, "CONSENT_SECRET_KEY"),
        ({"SECRET_KEY": "a-real-secret"}, "CONSENT_ADMIN_TOKENS"),
        ({"SECRET_KEY": "a-real-secret", "ADMIN_TOKENS": " , "}, "CONSENT_ADMIN_TOKENS"),
    ],
)
def test_refuses_to_start_outside_the_demo_without_secrets(monkeypatch, config, problem):
    for name in ("CONSENT_SECRET_KEY", "CONSENT_ADMIN_TOKENS", "CONSENT_DEMO"):
        monkeypatch.delenv(name, raising=False)
    for key, value in config.items():
        monkeypatch.setenv(f"CONSENT_{key}", value)
    monkeypatch.setenv("CONSENT_INVENTORY", str(ROOT / "cookies.yaml"))
    with pytest.raises(ConfigurationError, match=problem):
        create_app()


def test_starts_with_secrets_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("CONSENT_SECRET_KEY", "a-real-secret")
    monkeypatch.setenv("CONSENT_ADMIN_TOKENS", "one,two")
    monkeypatch.setenv("CONSENT_DATABASE_URL", database_url)
    monkeypatch.setenv("CONSENT_INVENTORY", str(ROOT / "cookies.yaml"))
    app = create_app()
    assert app.config["SECRET_KEY"] == "a-real-secret"
    response = app.test_client().get("/metrics", headers={"Authorization": "Bearer two"})
    assert response.status_code == 200


def test_logs_are_json_with_a_request_id_and_no_personal_data(make_app, capfd):
    app = make_app()

    @app.get("/fail")
    def fail() -> str:
        raise RuntimeError("boom")

    client = app.test_client()
    record = {
        "event_id": str(uuid.uuid4()),
        "action": "accept_all",
        "choices": {},
        "revision": 1,
        "page_url": "https://shop.example/secret-page?email=someone@example.com",
    }
    client.post(
        "/api/v1/sites/demo/consents",
        json=record,
        headers={"Origin": "http://localhost:8000", "User-Agent": "UniqueAgent/1.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )
    response = client.get("/fail?email=someone@example.com", headers={"X-Request-ID": "req-123"})
    assert response.headers["X-Request-ID"] == "req-123"
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    failure = next(entry for entry in logged if entry.get("request_id") == "req-123")
    assert failure["levelname"] == "ERROR" and failure["route"] == "/fail"
    text = json.dumps(logged)
    for personal in ("203.0.113.77", "someone@example.com", "UniqueAgent"):
        assert personal not in text


def test_request_id_is_made_when_missing_or_unsafe(client):
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "bad id <x>"}).headers["X-Request-ID"] != "bad id <x>"


def test_metrics_need_an_admin_and_count_records(client, admin_headers):
    assert client.get("/metrics").status_code == 401
    record = {
        "event_id": str(uuid.uuid4()),
        "action": "reject_all",
        "choices": {},
        "revision": 1,
        "page_url": "https://shop.example/",
    }
    client.post("/api/v1/sites/demo/consents", json=record, headers={"Origin": "http://localhost:8000"})
    text = client.get("/metrics", headers=admin_headers).get_data(as_text=True)
    assert 'consent_records_written_total{action="reject_all",site="demo"}' in text
    assert "consent_request_duration_seconds_bucket" in text
