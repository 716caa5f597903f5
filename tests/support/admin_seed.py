"""Records written straight into the log at chosen times, and the dashboard's login form, for dashboard tests."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import insert

from consent.store.models import ConsentRecord, db

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path="/admin/login"):
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, "the page has no CSRF token"
    return match.group(1)


def record(
    site: str,
    recorded_at: datetime,
    action: str = "accept_all",
    *,
    functional: bool = False,
    analytics: bool = False,
    advertising: bool = False,
    gpc: bool = False,
    consent_id: str | None = None,
) -> dict[str, Any]:
    """The values of one record; ``accept_all`` grants every category unless told otherwise."""
    if action == "accept_all":
        functional = analytics = advertising = True
    return {
        "site": site,
        "event_id": str(uuid.uuid4()),
        "consent_id": consent_id or str(uuid.uuid4()),
        "recorded_at": recorded_at,
        "action": action,
        "necessary": True,
        "functional": functional,
        "analytics": analytics,
        "advertising": advertising,
        "revision": 1,
        "inventory_hash": "0" * 64,
        "language": "en",
        "page_url": f"https://{site}.example/",
        "ip": "192.0.2.0",
        "user_agent": "seed",
        "gpc": gpc,
        "dnt": False,
        "record_hash": "0" * 64,
    }


def seed(app: Flask, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` in one statement."""
    with app.app_context():
        db.session.execute(insert(ConsentRecord), rows)
        db.session.commit()
