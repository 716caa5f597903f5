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


def utcnow() -> datetime:
    """Now, timezone-aware UTC, to the microsecond."""
    return datetime.now(UTC)


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


class ConsentRecord(db.Model):  # type: ignore[name-defined,misc]
    """One choice of one visitor: never updated, only appended (and purged when expired)."""

    __tablename__ = "consent_records"
    __table_args__ = (
        UniqueConstraint("site", "event_id"),
        Index("ix_consent_records_site_consent_id", "site", "consent_id"),
        Index("ix_consent_records_site_recorded_at", "site", "recorded_at"),
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
    # SHA-256 over the record's content (see consent.recording.record_hash): the
    # leaf that tamper evidence is built on and that receipts carry.
    record_hash: Mapped[str] = mapped_column(String(64))


class ConsentEventKey(db.Model):  # type: ignore[name-defined,misc]
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


class InventoryVersion(db.Model):  # type: ignore[name-defined,misc]
    """Every inventory version the service has served, so any record resolves to what was shown."""

    __tablename__ = "inventory_versions"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(40), index=True)
    revision: Mapped[int]
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_served_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AdminUser(db.Model):  # type: ignore[name-defined,misc]
    """A person who may log in to the dashboard; only a password hash is kept."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Every session carries the epoch it started in; raising it ends them all (logout, password change).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DailyRollup(db.Model):  # type: ignore[name-defined,misc]
    """One site's counts for one UTC day, up to ``counted_until``: what the dashboard reads instead of the log."""

    __tablename__ = "daily_rollups"

    site: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    records: Mapped[int]
    accept_all: Mapped[int]
    reject_all: Mapped[int]
    custom: Mapped[int]
    withdraw: Mapped[int]
    functional: Mapped[int]
    analytics: Mapped[int]
    advertising: Mapped[int]
    gpc: Mapped[int]
    counted_until: Mapped[datetime] = mapped_column(UTCDateTime())
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UndeclaredCookie(db.Model):  # type: ignore[name-defined,misc]
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


class LedgerCheckpoint(db.Model):  # type: ignore[name-defined,misc]
    """One signed link of a site's ledger: a seal over records, or a purge or erasure event.

    A ``seal`` claims that the records of ``site`` with ``after_id < id <= last_id``
    are exactly its ``leaves`` (see consent.ledger). ``labels`` holds the consent
    IDs of those leaves for naming removed records; it is not signed, so an
    erasure can blank it.
    """

    __tablename__ = "ledger_checkpoints"
    __table_args__ = (UniqueConstraint("site", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    after_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    leaf_count: Mapped[int]
    first_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    root: Mapped[str] = mapped_column(String(64))
    previous: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    leaves: Mapped[bytes] = mapped_column(LargeBinary)
    labels: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(String(128))
