"""Every route is either on the public list below or refuses a request without credentials.

Generated from ``app.url_map``: a new route is covered the moment it exists.
"""

from __future__ import annotations

import uuid

import pytest

# (rule, method) pairs anyone may call; everything else must refuse without credentials.
PUBLIC = {
    ("/healthz", "GET"),
    ("/readyz", "GET"),
    ("/api/v1/openapi.json", "GET"),
    ("/api/v1/docs", "GET"),
    ("/api/v1/sites/<site>/inventory", "GET"),
    # Checks a visitor's signed proof, which anyone may hold (tested in test_history).
    ("/api/v1/sites/<site>/receipt", "POST"),
    # The ledger's public keys and signed heads: published for anyone to check (tested in test_ledger_api).
    ("/api/v1/ledger/keys", "GET"),
    ("/api/v1/sites/<site>/ledger/head", "GET"),
    ("/api/v1/sites/<site>/ledger/consistency", "GET"),
    # Authorised by the site's declared Origin (tested in test_api).
    ("/api/v1/sites/<site>/consents", "POST"),
    # Cookie names the banner reports; authorised the same way (tested in test_undeclared).
    ("/api/v1/sites/<site>/undeclared", "POST"),
    ("/s/<site>/banner.js", "GET"),
    ("/s/<site>/declaration.js", "GET"),
    ("/s/<site>/cookies", "GET"),
    ("/demo", "GET"),
    ("/admin/login", "GET"),
    ("/admin/login", "POST"),
}


def _routes(app) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        values = {name: "demo" if name == "site" else str(uuid.uuid4()) for name in rule.arguments}
        with app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **values)
        # OPTIONS answers with allowed methods (or a CORS preflight) and reveals no data.
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.rule, method, url))
    return found


def test_every_route_is_public_or_refuses_without_credentials(app):
    client = app.test_client()
    checked = 0
    for rule, method, url in _routes(app):
        if (rule, method) in PUBLIC or rule.startswith("/static"):
            continue
        response = client.open(url, method=method, headers={"Origin": "http://localhost:8000"})
        refused = response.status_code in (401, 403) or (
            response.status_code in (302, 303) and "/admin/login" in response.headers.get("Location", "")
        )
        assert refused, f"{method} {rule} answered {response.status_code} without credentials"
        wrong = client.open(url, method=method, headers={"Authorization": "Bearer not-a-token"})
        assert wrong.status_code in (302, 303, 401, 403), f"{method} {rule} accepted a wrong token"
        checked += 1
    assert checked >= 2  # at least /metrics and a visitor's history


@pytest.mark.parametrize("path", ["/metrics"])
def test_admin_routes_open_with_a_token(client, admin_headers, path):
    assert client.get(path, headers=admin_headers).status_code == 200
