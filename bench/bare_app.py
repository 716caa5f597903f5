"""The ceiling for recording a consent: a bare Flask app that inserts one row per POST.

It parses the JSON body and appends one row to the service's own
``consent_records`` table (created by the service's migrations) with fixed or
derived values: no validation, no hashing, no receipt. Same database settings
as the service (on SQLite: WAL, ``synchronous=NORMAL``, a busy timeout),
committing once per request. Serve it the way the service is served, from the
project root so that ``gunicorn.conf.py`` applies::

    BENCH_DATABASE_URL=sqlite:///... python3 -m gunicorn 'bench.bare_app:create_app()'
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, request
from flask.typing import ResponseReturnValue
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, event, insert
from sqlalchemy.orm import registry

FIXED_HASH = "0" * 64
ORM = os.environ.get("BENCH_BARE_ORM") == "1"

metadata = MetaData()
# The columns the service writes; the table itself comes from the service's migrations.
consent_records = Table(
    "consent_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site", String(40)),
    Column("event_id", String(64)),
    Column("consent_id", String(36)),
    Column("recorded_at", DateTime(timezone=True)),
    Column("action", String(16)),
    Column("necessary", Boolean),
    Column("functional", Boolean),
    Column("analytics", Boolean),
    Column("advertising", Boolean),
    Column("revision", Integer),
    Column("inventory_hash", String(64)),
    Column("language", String(16)),
    Column("page_url", String(2048)),
    Column("ip", String(64)),
    Column("user_agent", String(512)),
    Column("gpc", Boolean),
    Column("dnt", Boolean),
    Column("record_hash", String(64)),
)

# Built once; each request passes its row as parameters, the usual Core idiom.
INSERT = insert(consent_records)


class Record:
    """The same table as an ORM class: ``BENCH_BARE_ORM=1`` inserts through the unit of work, the usual ORM idiom."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


registry().map_imperatively(Record, consent_records)

db = SQLAlchemy(metadata=metadata)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The service's SQLite settings, so that the ceiling is measured on equal terms.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def record(site: str) -> ResponseReturnValue:
    """Insert one row from the body, commit, answer 201."""
    body = json.loads(request.get_data(cache=False))
    choices = body.get("choices", {})
    now = datetime.now(UTC)
    consent_id = str(uuid.uuid4())
    values = dict(
        site=site,
        event_id=body["event_id"],
        consent_id=consent_id,
        # SQLite stores naive UTC, as the service does.
        recorded_at=now.replace(tzinfo=None) if db.engine.dialect.name == "sqlite" else now,
        action=body.get("action", ""),
        necessary=True,
        functional=bool(choices.get("functional")),
        analytics=bool(choices.get("analytics")),
        advertising=bool(choices.get("advertising")),
        revision=body.get("revision", 1),
        inventory_hash=FIXED_HASH,
        language=body.get("language", "en"),
        page_url=body.get("page_url", ""),
        ip=request.remote_addr or "",
        user_agent=request.user_agent.string[:512],
        gpc=bool(body.get("gpc")),
        dnt=bool(body.get("dnt")),
        record_hash=FIXED_HASH,
    )
    if ORM:
        db.session.add(Record(**values))
    else:
        db.session.execute(INSERT, values)
    db.session.commit()
    return {"consent_id": consent_id, "recorded_at": now.isoformat()}, 201


def create_app() -> Flask:
    """The bare app on ``BENCH_DATABASE_URL`` (a SQLAlchemy URL)."""
    app = Flask(__name__)
    url = os.environ["BENCH_DATABASE_URL"]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    if url.startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"connect_timeout": 3}}
    db.init_app(app)
    if url.startswith("sqlite"):
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_pragmas)
    app.add_url_rule("/api/v1/sites/<site>/consents", view_func=record, methods=["POST"])
    return app
