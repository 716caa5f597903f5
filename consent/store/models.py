"""Database models: the append-only consent log and the inventory versions it refers to."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

# SQLite has no 64-bit autoincrement type other than INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


class ConsentRecord(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """One choice of one visitor: never updated, only appended (and purged when expired)."""

    __tablename__ = "consent_records"
    __table_args__ = (
        UniqueConstraint("site", "event_id"),
        Index("ix_consent_records_site_consent_id", "site", "consent_id"),
        Index("ix_consent_records_site_recorded_at", "site", "recorded_at"),
        # SQLite: ids are never given out twice, even after the newest record is erased.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[str] = mapped_column(String(36))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(16))
    necessary: Mapped[bool]
    functional: Mapped[bool]
    analytics: Mapped[bool]
    advertising: Mapped[bool]
    revision: Mapped[int]
    inventory_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    page_url: Mapped[str] = mapped_column(String(2048))
    ip: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    gpc: Mapped[bool]
    dnt: Mapped[bool]
    # What the server applied (consent.web.regions): the regime, the visitor's region (DE, US-CA)
    # and whether the request carried Sec-GPC: 1. None on records from before regions.
    regime: Mapped[str | None] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(8))
    sec_gpc: Mapped[bool | None]
    # The record's leaf hash in its site's Merkle tree: SHA-256 over 0x00 and its
    # canonical bytes (consent.ledger.canonical).
    record_hash: Mapped[str] = mapped_column(String(64))


class ConsentEventKey(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """The idempotency key of a record, kept apart only when the log is partitioned by month.

    PostgreSQL allows a unique index on a partitioned table only if it holds the
    partition key, so a partitioned log cannot refuse a second ``(site,
    event_id)`` by itself; recording then claims the key here first, in the
    same statement. Nothing personal: a site and the banner's random event id.
    """

    __tablename__ = "consent_event_keys"

    site: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # When the record was written, so that a purge drops expired keys with their records.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InventoryVersion(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """Every inventory version the service has served, so any record resolves to what was shown."""

    __tablename__ = "inventory_versions"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(40), index=True)
    revision: Mapped[int]
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_served_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AdminUser(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """A person who may log in to the dashboard; only a password hash is kept."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Every session carries the epoch it started in; raising it ends them all (logout, password change).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DailyRollup(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """One site's counts for one UTC day, up to ``counted_until``: what the dashboard reads instead of the log."""

    __tablename__ = "daily_rollups"

    site: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    records: Mapped[int]
    accept_all: Mapped[int]
    reject_all: Mapped[int]
    custom: Mapped[int]
    withdraw: Mapped[int]
    opt_out: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    functional: Mapped[int]
    analytics: Mapped[int]
    advertising: Mapped[int]
    gpc: Mapped[int]
    counted_until: Mapped[datetime] = mapped_column(UTCDateTime())
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UndeclaredCookie(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """A cookie name visitors' browsers carried on a page that the site's inventory does not declare."""

    __tablename__ = "undeclared_cookies"
    __table_args__ = (UniqueConstraint("site", "name", "page_path"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(64))
    page_path: Mapped[str] = mapped_column(String(255))
    reports: Mapped[int]
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerSeal(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """One batch of a site's records appended to its Merkle tree: the leaves ``first_index`` onwards.

    The seal claims that the records of ``site`` with ``after_id < id <= last_id``
    are exactly its ``leaves`` (see consent.ledger.leaves: id, time, consent
    fingerprint and leaf hash each). Nothing here is signed: the signed tree
    heads cover the leaf hashes, so a changed leaf no longer gives a signed root.
    ``labels`` holds the consent IDs, for naming removed records; erasure blanks them.
    """

    __tablename__ = "ledger_seals"
    __table_args__ = (
        UniqueConstraint("site", "seq"),
        UniqueConstraint("site", "first_index"),
        Index("ix_ledger_seals_site_last_at", "site", "last_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int]
    first_index: Mapped[int] = mapped_column(BigInteger)
    leaf_count: Mapped[int]
    after_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    # The earliest and latest recorded_at among the leaves: where an export's time range starts and ends.
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    leaves: Mapped[bytes] = mapped_column(LargeBinary)
    labels: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerTile(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """Up to 256 hashes of complete subtrees of one height, so that proofs never rehash the whole tree.

    Tile ``index`` of ``level`` L holds the hashes of the subtrees of 256**L
    leaves numbered ``256 * index`` onwards (leaf hashes themselves live in the seals).
    """

    __tablename__ = "ledger_tiles"

    site: Mapped[str] = mapped_column(String(40), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerHead(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """A signed tree head: the root of a site's tree at ``tree_size`` leaves, signed with Ed25519 (see signing)."""

    __tablename__ = "ledger_heads"
    __table_args__ = (UniqueConstraint("site", "tree_size"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))


class LedgerEvent(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """A signed erasure: a purge or a ``forget`` that removed the records of some leaves (the leaves stay)."""

    __tablename__ = "ledger_events"
    __table_args__ = (Index("ix_ledger_events_site", "site"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The signed statement as JSON text, exactly as signed and published.
    signed: Mapped[str] = mapped_column(Text)


class SiteScan(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy makes the base at run time
    """The newest ``consent scan`` of a site: its report as written by ``--json``, and when it ran."""

    __tablename__ = "site_scans"

    site: Mapped[str] = mapped_column(String(40), primary_key=True)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
