"""Database wiring: SQLite (WAL, for several writing workers) or PostgreSQL through psycopg 3."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError

from consent.inventory.sites import Site
from consent.resources import MIGRATIONS
from consent.store.models import InventoryVersion, db
from consent.timestamps import utcnow


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
    # No pre-ping: it cost a round trip per request. A connection the database
    # dropped fails once; recording a consent then replaces the pool and
    # retries (see PreparedInsert and recording._append).
    options: dict[str, Any] = {"hide_parameters": True}
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


def driver_connection(connection: Connection | None = None) -> Any:
    """The driver's own connection (psycopg or sqlite3) under ``connection``, by default the session's."""
    raw = (connection if connection is not None else db.session.connection()).connection.driver_connection
    if raw is None:
        raise RuntimeError("the database connection is closed")
    return raw


def one_row(cursor: Any) -> Any:
    """The row an aggregate query always returns (a driver cursor's ``fetchone`` is typed optional)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("an aggregate query returned no row")
    return row


def dialect_insert(table: Any) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` on the bound database."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    return upsert(table)


class PreparedInsert:
    """One ``INSERT … RETURNING`` compiled once and run on a pooled DBAPI connection.

    SQLAlchemy still compiles the statement, converts the values by their
    column types, pools the connections, tells a dropped connection from other
    errors and raises its own exceptions; what is skipped is its per-execution
    machinery (cache lookup, execution context, result object), which cost
    about 10 % of recording a consent.

    On PostgreSQL the statement runs in autocommit: one statement is its own
    transaction, so it is as atomic as BEGIN, INSERT, COMMIT, in one round
    trip to the server instead of three.
    """

    def __init__(self, statement: Any, engine: Engine, keys: list[str]) -> None:
        compiled = statement.compile(dialect=engine.dialect, column_keys=keys)
        self.engine = engine
        self.autocommit = engine.dialect.name == "postgresql"
        self.sql = str(compiled)
        self.order: tuple[str, ...] | None = compiled.positiontup  # None for named parameters
        self.convert: dict[str, Any] = {}
        for key, bind in compiled.binds.items():
            processor = bind.type.bind_processor(engine.dialect)
            if processor is not None:
                self.convert[key] = processor

    def _parameters(self, values: dict[str, Any]) -> Any:
        convert = self.convert
        converted = {key: convert[key](value) if key in convert else value for key, value in values.items()}
        return converted if self.order is None else tuple(converted[key] for key in self.order)

    def first_column(self, values: dict[str, Any]) -> Any:
        """Run and commit; the first column of the returned row, or None if no row came back."""
        dialect = self.engine.dialect
        raw = cursor = driver = None
        try:
            raw = self.engine.raw_connection()
            if self.autocommit:
                driver = raw.driver_connection
                if driver is not None:
                    driver.autocommit = True
            cursor = raw.cursor()
            cursor.execute(self.sql, self._parameters(values))
            row = cursor.fetchone()
            if not self.autocommit:
                raw.commit()
        except dialect.loaded_dbapi.Error as error:
            dropped = raw is not None and dialect.is_disconnect(error, raw.dbapi_connection, cursor)
            if dropped and raw is not None:
                # Every pooled connection is as stale as this one (the database restarted).
                raw.invalidate(error)
                self.engine.dispose(close=False)
            raise DBAPIError.instance(
                self.sql,
                None,
                error,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=dialect,
                connection_invalidated=dropped,
            ) from error
        finally:
            if cursor is not None:
                with contextlib.suppress(Exception):
                    cursor.close()
            if raw is not None:
                if driver is not None:
                    with contextlib.suppress(Exception):  # a broken connection is discarded by the pool anyway
                        driver.autocommit = False
                raw.close()  # back to the pool, which rolls back whatever was not committed
        return row[0] if row else None


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
