"""Every time the service writes or reads: UTC, to the millisecond, in one text form.

A record's time is kept to the millisecond (``to_ms``), written as
``YYYY-MM-DDTHH:MM:SS.mmmZ`` (``iso``, and the same text in SQL:
``SQL_ISO``), and carried in Merkle leaves as milliseconds since 1970
(``epoch_ms``). The standard library alone: the offline verifier uses this.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The text of ``iso`` computed by the database from the ``recorded_at`` column, per dialect.
# SQLite holds '2026-11-21 20:19:00.123000' (UTC), PostgreSQL a timestamptz.
SQL_ISO = {
    "sqlite": "substr(recorded_at, 1, 10) || 'T' || substr(recorded_at, 12, 12) || 'Z'",
    "postgresql": """to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')""",
}


def utcnow() -> datetime:
    """Now, timezone-aware UTC, to the microsecond."""
    return datetime.now(UTC)


def to_ms(moment: datetime) -> datetime:
    """The moment cut to the millisecond, as stored and hashed."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` of a UTC moment (naive or aware)."""
    # isoformat is several times faster than strftime; the offset of an aware time is cut off.
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment.astimezone(UTC)) if moment is not None else None


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time (``Z``, an offset, or none: UTC) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_iso_or_none(text: str | None) -> datetime | None:
    return parse_iso(text) if text is not None else None


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970 (UTC), exactly."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    """The UTC moment ``ms`` milliseconds after 1970."""
    return EPOCH + timedelta(milliseconds=ms)
