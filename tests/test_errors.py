from __future__ import annotations

import pytest

from consent.web.errors import ApiError


def test_unknown_route_and_method_are_json(client):
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    wrong_method = client.delete("/api/v1/sites/demo/inventory")
    assert wrong_method.status_code == 405
    assert wrong_method.json["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["Allow"]


def test_unexpected_error_is_a_json_500_without_traceback(make_app):
    app = make_app()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail in /srv/app/module.py")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.json == {"error": {"code": "internal", "message": "internal error", "fields": {}}}
    assert b"Traceback" not in response.data and b"secret detail" not in response.data


def test_api_error_carries_fields(make_app):
    app = make_app()

    @app.get("/fields")
    def fields() -> str:
        raise ApiError(422, "invalid", {"x": ["bad"]})

    assert app.test_client().get("/fields").json["error"]["fields"] == {"x": ["bad"]}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://127.0.0.1:1/test",
        "sqlite:////nonexistent-folder/for/consent.db",
    ],
)
def test_unreachable_database_is_503_not_500(make_app, url):
    app = make_app(DATABASE_URL=url)
    client = app.test_client()
    record = {
        "event_id": "01234567-89ab-4def-8123-456789abcdef",
        "action": "reject_all",
        "choices": {},
        "revision": 1,
        "page_url": "https://shop.example/",
    }
    response = client.post("/api/v1/sites/demo/consents", json=record, headers={"Origin": "http://localhost:8000"})
    assert response.status_code == 503
    assert response.json["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").json == {"status": "ok"}


def test_banner_and_inventory_are_served_while_the_database_is_away(make_app):
    client = make_app(DATABASE_URL="postgresql://127.0.0.1:1/test").test_client()
    assert client.get("/s/demo/banner.js").status_code == 200
    assert client.get("/api/v1/sites/demo/inventory").status_code == 200
