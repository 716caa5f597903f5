"""Undeclared-cookie reports: validation, origin check, aggregation, caps, rate limit, CLI and dashboard."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from consent.store.models import UndeclaredCookie, db

ORIGIN = "http://localhost:8000"
URL = "/api/v1/sites/demo/undeclared"


def report(client, names, page_path="/products/42", *, origin=ORIGIN, revision=1, **extra):
    body = json.dumps({"names": names, "page_path": page_path, "revision": revision, **extra})
    headers = {"Content-Type": "text/plain", **({"Origin": origin} if origin else {})}
    return client.post(URL, data=body, headers=headers)


def stored(app):
    with app.app_context():
        rows = db.session.scalars(select(UndeclaredCookie).order_by(UndeclaredCookie.name, UndeclaredCookie.page_path))
        return [(r.site, r.name, r.page_path, r.reports) for r in rows]


def test_names_are_counted_by_name_and_page(app, client):
    response = report(client, ["tracker_id", "_pk_ses.1", "tracker_id"])
    assert response.status_code == 202 and response.json == {"kept": 2}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    report(client, ["tracker_id"])
    report(client, ["tracker_id"], "/cart?step=2#pay")
    assert stored(app) == [
        ("demo", "_pk_ses.1", "/products/42", 1),
        ("demo", "tracker_id", "/cart", 1),
        ("demo", "tracker_id", "/products/42", 2),
    ]
    with app.app_context():
        row = db.session.scalars(select(UndeclaredCookie).where(UndeclaredCookie.page_path == "/products/42")).first()
        assert row.first_seen <= row.last_seen


def test_declared_names_are_ignored(app, client):
    # Exact, prefix (_ga…), regex (_hjSession_\d+) and the banner's own cookie.
    response = report(client, ["session", "_ga_X1Y2", "_hjSession_123", "consent", "unknown_one"])
    assert response.json == {"kept": 1}
    assert [row[1] for row in stored(app)] == ["unknown_one"]
    assert report(client, ["_ga"]).json == {"kept": 0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"names": ["a b"]}, "names"),
        ({"names": ["a=b"]}, "names"),
        ({"names": ["a;b"]}, "names"),
        ({"names": [""]}, "names"),
        ({"names": ["x" * 65]}, "names"),
        ({"names": ["café"]}, "names"),
        ({"names": ["abc\n"]}, "names"),
        ({"names": [7]}, "names"),
        ({"names": []}, "names"),
        ({"names": [f"n{i}" for i in range(51)]}, "names"),
        ({"names": "abc"}, "names"),
        ({"page_path": "https://elsewhere.example/"}, "page_path"),
        ({"page_path": "//elsewhere.example/"}, "page_path"),
        ({"page_path": ""}, "page_path"),
        ({"revision": "1"}, "revision"),
        ({"revision": 0}, "revision"),
        ({"value": "secret"}, "value"),
    ],
)
def test_bad_reports_are_refused_with_422(app, client, body, field):
    full = {"names": ["fine"], "page_path": "/", "revision": 1, **body}
    response = client.post(URL, data=json.dumps(full), headers={"Content-Type": "text/plain", "Origin": ORIGIN})
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]
    assert stored(app) == []


@pytest.mark.parametrize(
    ("headers", "data", "status"),
    [
        (
            {"Content-Type": "text/plain", "Origin": "https://evil.example"},
            '{"names":["a"],"page_path":"/","revision":1}',
            403,
        ),
        ({"Content-Type": "text/plain"}, '{"names":["a"],"page_path":"/","revision":1}', 403),
        ({"Content-Type": "application/x-www-form-urlencoded", "Origin": ORIGIN}, "names=a", 415),
        ({"Content-Type": "text/plain", "Origin": ORIGIN}, "{not json", 400),
        ({"Content-Type": "text/plain", "Origin": ORIGIN}, "[]", 400),
        ({"Content-Type": "text/plain", "Origin": ORIGIN}, "x" * 20_000, 413),
    ],
)
def test_refused_requests_write_nothing(app, client, headers, data, status):
    response = client.post(URL, data=data, headers=headers)
    assert response.status_code == status
    assert response.json["error"]["code"]
    assert stored(app) == []


def test_unknown_site_is_404(client):
    assert client.post("/api/v1/sites/nope/undeclared", data="{}", headers={"Origin": ORIGIN}).status_code == 404


def test_names_kept_per_site_are_capped(make_app):
    app = make_app(UNDECLARED_MAX_NAMES=3)
    client = app.test_client()
    assert report(client, ["a1", "a2"]).json == {"kept": 2}
    assert report(client, ["a3", "a4", "a5"]).json == {"kept": 1}
    # Names already kept are still counted; new ones are not.
    assert report(client, ["a1", "a6"]).json == {"kept": 1}
    with app.app_context():
        names = db.session.scalar(select(func.count(func.distinct(UndeclaredCookie.name))))
    assert names == 3
    assert ("demo", "a1", "/products/42", 2) in stored(app)


def test_pages_kept_per_name_are_capped(make_app):
    app = make_app(UNDECLARED_MAX_PATHS=2)
    client = app.test_client()
    for path in ("/a", "/b", "/c", "/d", "/a"):
        report(client, ["tracker"], path)
    assert stored(app) == [
        ("demo", "tracker", "*", 2),
        ("demo", "tracker", "/a", 2),
        ("demo", "tracker", "/b", 1),
    ]


def test_reports_are_rate_limited(make_app):
    client = make_app(RATELIMIT_UNDECLARED_PER_CLIENT="2 per minute").test_client()
    statuses = [report(client, ["tracker"]).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]


def test_preflight_is_answered_for_the_sites_origins(client):
    response = client.options(URL, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert client.options(URL, headers={"Origin": "https://evil.example"}).status_code == 403


def test_command_lists_undeclared_cookies(client, runner):
    assert "no undeclared cookies reported" in runner.invoke(args=["undeclared", "--site", "demo"]).output
    report(client, ["tracker_id"], "/checkout")
    report(client, ["tracker_id"], "/checkout")
    result = runner.invoke(args=["undeclared", "--site", "demo"])
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if line.startswith("tracker_id"))
    assert line.split()[1:3] == ["/checkout", "2"]
    assert runner.invoke(args=["undeclared", "--site", "nope"]).exit_code == 1


def test_dashboard_lists_undeclared_cookies(client, admin_headers):
    report(client, ["tracker_id"], "/checkout")
    page = client.get("/admin/sites/demo", headers=admin_headers).get_data(as_text=True)
    section = page[page.index('id="undeclared-heading"') :]
    assert '<code>tracker_id</code></td><td class="url">/checkout</td><td class="num">1</td>' in section


def test_report_endpoint_is_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").json
    operation = document["paths"]["/api/v1/sites/{site}/undeclared"]["post"]
    assert "202" in operation["responses"] and "429" in operation["responses"]
    schema = document["components"]["schemas"]["UndeclaredReport"]
    assert schema["properties"]["names"]["maxItems"] == 50
