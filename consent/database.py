"""Database wiring: SQLite (WAL, for several writing workers) or PostgreSQL through psycopg 3."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from consent.inventory import Site
from consent.models import InventoryVersion, db, utcnow

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def database_url(app: Flask) -> str:
    """The configured URL, with ``postgresql://`` mapped to the psycopg 3 driver."""
    url = app.config["DATABASE_URL"]
    if not url:
        os.makedirs(app.instance_path, exist_ok=True)
        return "sqlite:///" + os.path.join(app.instance_path, "consent.db")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return str(url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer and, with a busy timeout, lets
    # several gunicorn workers write without "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def init_app(app: Flask) -> None:
    """Bind Flask-SQLAlchemy to ``app``."""
    url = database_url(app)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    # hide_parameters keeps personal data (addresses, URLs) out of error messages and logs.
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if url.startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": 3}
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", options)
    db.init_app(app)
    if url.startswith("sqlite"):
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_pragmas)


def init_migrations(app: Flask) -> None:
    """The Alembic migrations (``consent db upgrade``); imported here, since only some commands need them."""
    from flask_migrate import Migrate

    Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)


def dialect_insert(table: Any) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` on the bound database."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    return upsert(table)


def remember_inventory(site: Site) -> None:
    """Store the site's current inventory version under its hash, once per process (race-safe)."""
    # A set lookup per request instead of a query.
    stored: set[str] = current_app.extensions.setdefault("consent.stored_versions", set())
    if site.hash in stored:
        return
    values = {
        "hash": site.hash,
        "site": site.key,
        "revision": site.revision,
        "content": site.public,
        "first_served_at": utcnow(),
    }
    statement = dialect_insert(InventoryVersion).values(values)
    try:
        db.session.execute(statement.on_conflict_do_nothing(index_elements=["hash"]))
        db.session.commit()
    except DBAPIError:
        # The banner and the declaration must still be served while the
        # database is away; the version is stored on a later request.
        db.session.rollback()
        current_app.logger.warning("inventory version not stored: database unavailable")
        return
    stored.add(site.hash)
