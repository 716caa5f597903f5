"""What consent statistics count, and the SQL that counts it: the parts the day and region roll-ups share."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, Integer, case, cast, func

from consent.log.recording import ACTIONS, OPTIONAL, REFUSALS
from consent.store.models import ConsentRecord, db


@dataclass(frozen=True)
class Counts:
    """Records of one site over a span, by action, by granted category and with GPC."""

    records: int = 0
    accept_all: int = 0
    reject_all: int = 0
    custom: int = 0
    withdraw: int = 0
    opt_out: int = 0
    functional: int = 0
    analytics: int = 0
    advertising: int = 0
    gpc: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Counts)))

    @property
    def refusals(self) -> int:
        """Records that refused: reject all, withdraw, opt out."""
        return sum(getattr(self, action) for action in REFUSALS)

    def rate(self, part: str) -> float | None:
        """The share of records granting a category (or sending GPC, or refusing); None without records."""
        return getattr(self, part) / self.records if self.records else None


COUNTED = tuple(f.name for f in fields(Counts))


def utc_day() -> ColumnElement[Any]:
    """The UTC day of a record, in SQL."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", ConsentRecord.recorded_at), Date)
    return func.date(ConsentRecord.recorded_at)  # SQLite keeps UTC as text: "YYYY-MM-DD HH:MM:SS..."


def count_columns() -> list[Any]:
    """SQL aggregates in the order of Counts' fields."""
    record = ConsentRecord
    columns: list[Any] = [func.count()]
    columns += [func.sum(case((record.action == action, 1), else_=0)) for action in ACTIONS]
    columns += [func.sum(cast(getattr(record, part), Integer)) for part in (*OPTIONAL, "gpc")]
    return columns


def in_span(site: str, start: datetime, end: datetime) -> list[Any]:
    """The conditions for the site's records with ``start <= recorded_at < end``."""
    record = ConsentRecord
    return [record.site == site, record.recorded_at >= start, record.recorded_at < end, record.action.in_(ACTIONS)]


def as_date(value: Any) -> date:
    """A day as the database gives it (SQLite: text)."""
    return value if isinstance(value, date) else date.fromisoformat(value)
