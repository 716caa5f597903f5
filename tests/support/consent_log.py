"""Helpers for tests of the consent log: recording as the banner does, tampering as an insider would."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select, text

from consent.cli import cli
from consent.ledger.canonical import ENTRY_FIELDS, record_hash
from consent.store.models import ConsentRecord, db

ORIGIN = "http://localhost:8000"
FINDING = re.compile(r"^(\w+)\s+record (\d+)\s+consent ID (\S+)", re.MULTILINE)

API_ORIGIN = {"Origin": "http://localhost:8000"}
CONSENTS_URL = "/api/v1/sites/demo/consents"


def choice(**body: Any) -> dict[str, Any]:
    """A consent body as the banner sends it."""
    return {
        "event_id": str(uuid.uuid4()),
        "action": "custom",
        "choices": {"functional": True, "analytics": False, "advertising": False},
        "revision": 1,
        "language": "en",
        "page_url": "https://shop.example/products/42?ref=mail",
        **body,
    }


def send(client: FlaskClient, payload: dict[str, Any], user_agent: str = "Mozilla/5.0 (X11; Linux x86_64)") -> Any:
    """POST a consent body from the demo's origin; the response."""
    headers = {"Origin": ORIGIN, "User-Agent": user_agent}
    return client.post(
        "/api/v1/sites/demo/consents", data=json.dumps(payload), headers=headers, content_type="text/plain"
    )


def post_choice(client: FlaskClient, **body: Any) -> dict[str, Any]:
    """Record a choice as the banner would; the response body (consent_id, receipt, proof)."""
    user_agent = body.pop("user_agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
    response = send(client, choice(**body), user_agent)
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, list(args))


def execute(app: Flask, statement: str, **params: Any) -> None:
    """Tamper with the database directly, as someone with write access would."""
    with app.app_context():
        db.session.execute(text(statement), params)
        db.session.commit()


def records(app: Flask) -> list[tuple[int, str]]:
    """(id, consent_id) of every stored record, in id order."""
    with app.app_context():
        rows = db.session.execute(select(ConsentRecord.id, ConsentRecord.consent_id).order_by(ConsentRecord.id))
        return [(row.id, row.consent_id) for row in rows]


def findings(output: str) -> set[tuple[str, int, str]]:
    """(kind, record id, consent ID) of each record verify names."""
    return {(kind, int(record_id), consent_id) for kind, record_id, consent_id in FINDING.findall(output)}


def stored_values(app: Flask, record_id: int) -> dict[str, Any]:
    with app.app_context():
        row = db.session.get(ConsentRecord, record_id)
        assert row is not None
        return {name: getattr(row, name) for name in (*ENTRY_FIELDS, "event_id")}


def sealed_log(app: Flask, count: int) -> list[tuple[int, str]]:
    """``count`` recorded choices, sealed."""
    client = app.test_client()
    for _ in range(count):
        post_choice(client)
    result = run(app, "seal")
    assert result.exit_code == 0, result.output
    return records(app)


def insert_records(app: Flask, moments: list[datetime], **values: Any) -> list[int]:
    """Records at the given moments, written directly (as if recorded then); their ids."""
    ids = []
    with app.app_context():
        for moment in moments:
            row = {
                "site": "demo", "event_id": str(uuid.uuid4()), "consent_id": str(uuid.uuid4()),
                "recorded_at": moment.replace(microsecond=moment.microsecond // 1000 * 1000), "action": "accept_all",
                "necessary": True, "functional": True, "analytics": True, "advertising": True, "revision": 1,
                "inventory_hash": "0" * 64, "language": "en", "page_url": "https://shop.example/", "ip": "192.0.2.0",
                "user_agent": "Mozilla/5.0", "gpc": False, "dnt": False, **values,
            }  # fmt: skip
            row["record_hash"] = record_hash(row)
            ids.append(db.session.execute(insert(ConsentRecord).values(row).returning(ConsentRecord.id)).scalar_one())
        db.session.commit()
    return ids


def rows(app) -> list[ConsentRecord]:
    with app.app_context():
        return list(db.session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)))


def count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ConsentRecord))
