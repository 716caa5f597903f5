"""Making real exports and their proofs for the offline verify tests: records in the log, sealed, exported."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import Result
from flask import Flask
from sqlalchemy import insert, select

from consent.cli import cli
from consent.ledger.canonical import CATEGORIES, HASHED_FIELDS, record_hash
from consent.ledger.keys import key_set
from consent.store.models import ConsentRecord, db

ORIGIN = "http://localhost:8000"
USER_AGENTS = (
    'Mozilla/5.0 (X11; Linux x86_64) "quoted", and a comma',
    "'=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example")',
    "Tab\there, ünïcødé ✓",
    "back\\slash",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0",
)


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, list(args))


def post_choices(app: Flask, user_agents: Iterable[str] = USER_AGENTS) -> None:
    """Record a choice per user agent through the API, as the banner would."""
    client = app.test_client()
    for number, user_agent in enumerate(user_agents):
        payload = {
            "event_id": str(uuid.uuid4()),
            "action": "custom",
            "choices": {"functional": True, "analytics": number % 2 == 0, "advertising": False},
            "revision": 1,
            "language": "en",
            "page_url": f"https://shop.example/products/{number}?ref=mail,list",
        }
        response = client.post(
            "/api/v1/sites/demo/consents",
            data=json.dumps(payload),
            headers={"Origin": ORIGIN, "User-Agent": user_agent},
            content_type="text/plain",
        )
        assert response.status_code == 201, response.json


def insert_records(app: Flask, records: list[dict[str, Any]]) -> None:
    """Store records exactly as given (hashed with the service's own function), bypassing the API."""
    with app.app_context():
        rows = [{**values, "record_hash": record_hash(values)} for values in records]
        db.session.execute(insert(ConsentRecord), rows)
        db.session.commit()


def plain_record(number: int, **overrides: Any) -> dict[str, Any]:
    """A record of the demo site with ordinary values."""
    values: dict[str, Any] = {
        "site": "demo",
        "event_id": str(uuid.uuid4()),
        "consent_id": str(uuid.uuid4()),
        "recorded_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=number, milliseconds=number),
        "action": "custom",
        **{category: category == "necessary" or number % 2 == 0 for category in CATEGORIES},
        "revision": 1,
        "inventory_hash": "ab" * 32,
        "language": "en",
        "page_url": "https://shop.example/",
        "ip": "198.51.100.0",
        "user_agent": "Mozilla/5.0",
        "gpc": False,
        "dnt": number % 3 == 0,
        **overrides,
    }
    assert set(HASHED_FIELDS) <= set(values)
    return values


def seal(app: Flask) -> None:
    result = run(app, "seal")
    assert result.exit_code == 0, result.output


def export(app: Flask, path: Path, fmt: str = "csv", proof: Path | None = None, since: datetime | None = None) -> Path:
    """Export the demo site as ``fmt`` to ``path`` and its proof beside it (or to ``proof``); the proof's path."""
    proof = proof or path.with_suffix(".proof.json")
    options = ["--since", since.isoformat()] if since is not None else []
    result = run(app, "export", "--site", "demo", "--format", fmt, "-o", str(path), "--proof", str(proof), *options)
    assert result.exit_code == 0, result.output
    return proof


def write_keys(app: Flask, path: Path) -> Path:
    """The site's published key set, as ``GET /api/v1/ledger/keys`` gives it, in a file."""
    with app.app_context():
        path.write_text(json.dumps(key_set()))
    return path


def stored_ids(app: Flask) -> list[tuple[int, str]]:
    with app.app_context():
        rows = db.session.execute(select(ConsentRecord.id, ConsentRecord.consent_id).order_by(ConsentRecord.id))
        return [(row.id, row.consent_id) for row in rows]
