"""Consent statistics per site and UTC day: the numbers of the dashboard and of ``consent stats``.

Complete days are counted once and kept in ``daily_rollups``; only the days
still being written (today, and yesterday for a few minutes after midnight)
are counted live from the log. Nothing is added to the path that records
consent. Records of a complete day change only when they are purged or
forgotten: that code calls ``invalidate_rollups`` for the days it touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import ColumnElement, Date, Integer, case, cast, delete, func, select

from consent.database import dialect_insert
from consent.inventory import sites
from consent.models import ConsentRecord, DailyRollup, db, utcnow
from consent.recording import ACTIONS, OPTIONAL

DEFAULT_DAYS = 30
MAX_DAYS = 3660
# A record is timed before it is committed: a day counts as complete only a
# while after midnight, once no record of it can still be on its way.
SETTLING = timedelta(minutes=5)
# Rows per INSERT when storing roll-ups (SQLite allows 32766 parameters per statement).
STORE_BATCH = 500


@dataclass(frozen=True)
class Counts:
    """Records of one site over a span, by action, by granted category and with GPC."""

    records: int = 0
    accept_all: int = 0
    reject_all: int = 0
    custom: int = 0
    withdraw: int = 0
    functional: int = 0
    analytics: int = 0
    advertising: int = 0
    gpc: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Counts)))

    def rate(self, part: str) -> float | None:
        """The share of records granting a category (or sending GPC); None without records."""
        return getattr(self, part) / self.records if self.records else None


@dataclass(frozen=True)
class DayCounts:
    day: date
    counts: Counts


@dataclass(frozen=True)
class SiteStats:
    """A site's days from ``since`` to ``until`` (inclusive, UTC) and their totals."""

    site: str
    since: date
    until: date
    days: list[DayCounts]

    @property
    def totals(self) -> Counts:
        total = Counts()
        for day in self.days:
            total = total + day.counts
        return total


def percent(rate: float | None) -> str:
    """A rate as the dashboard and the terminal show it: ``42.5 %``, or ``–`` without records."""
    return "–" if rate is None else f"{rate * 100:.1f} %"


def default_since(today: date) -> date:
    """The first day of the default period: the last 30 days, today included."""
    return today - timedelta(days=DEFAULT_DAYS - 1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _utc_day() -> ColumnElement[Any]:
    """The UTC day of a record, in SQL."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", ConsentRecord.recorded_at), Date)
    return func.date(ConsentRecord.recorded_at)  # SQLite keeps UTC as text: "YYYY-MM-DD HH:MM:SS..."


def count_days(site: str, first: date, end: date) -> dict[date, Counts]:
    """Count the site's records per UTC day from ``first`` up to, not including, ``end``, in one query."""
    record = ConsentRecord
    day = _utc_day().label("day")
    columns: list[Any] = [day, func.count()]
    columns += [func.sum(case((record.action == action, 1), else_=0)) for action in ACTIONS]
    columns += [func.sum(cast(getattr(record, part), Integer)) for part in (*OPTIONAL, "gpc")]
    rows = db.session.execute(
        select(*columns)
        .where(
            record.site == site,
            record.recorded_at >= _midnight(first),
            record.recorded_at < _midnight(end),
            record.action.in_(ACTIONS),
        )
        .group_by(day)
    )
    counted = {when: Counts() for when in _day_range(first, end)}
    for when, *values in rows:
        counted[when if isinstance(when, date) else date.fromisoformat(when)] = Counts(*(int(v) for v in values))
    return counted


def _stored_days(site: str, first: date, last: date) -> dict[date, Counts]:
    rows = db.session.scalars(
        select(DailyRollup).where(DailyRollup.site == site, DailyRollup.day >= first, DailyRollup.day <= last)
    )
    names = [f.name for f in fields(Counts)]
    return {row.day: Counts(*(getattr(row, name) for name in names)) for row in rows}


def _store_days(site: str, counted: dict[date, Counts]) -> None:
    now = utcnow()
    values = [
        {"site": site, "day": day, **{f.name: getattr(c, f.name) for f in fields(Counts)}, "computed_at": now}
        for day, c in sorted(counted.items())
    ]
    for start in range(0, len(values), STORE_BATCH):
        # Two requests may count the same day at once: the first stored wins, and both are equal.
        statement = dialect_insert(DailyRollup).values(values[start : start + STORE_BATCH])
        db.session.execute(statement.on_conflict_do_nothing(index_elements=["site", "day"]))
    db.session.commit()


def _first_record_day(site: str) -> date | None:
    first = db.session.scalar(select(func.min(ConsentRecord.recorded_at)).where(ConsentRecord.site == site))
    if first is None:
        return None
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return first.astimezone(UTC).date()


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days: ``(first, end)`` with ``end`` excluded."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + timedelta(days=1))
        else:
            runs.append((day, day + timedelta(days=1)))
    return runs


def site_stats(site: str, since: date | None = None, now: datetime | None = None) -> SiteStats:
    """Counts per day from ``since`` (default: the last 30 days) to today, complete days from the roll-ups."""
    now = now or utcnow()
    today = now.date()
    since = max(since or default_since(today), today - timedelta(days=MAX_DAYS - 1))
    settled = (now - SETTLING).date()  # the days before this one are complete
    known = _stored_days(site, since, settled - timedelta(days=1)) if since < settled else {}
    missing = [day for day in _day_range(since, settled) if day not in known]
    first = _first_record_day(site) if missing else None
    # Days before the site's first record are zero: neither counted nor stored.
    missing = [day for day in missing if first is not None and day >= first]
    if missing:
        counted: dict[date, Counts] = {}
        for run in _runs(missing):
            counted.update(count_days(site, *run))
        _store_days(site, counted)
        known.update(counted)
    known.update(count_days(site, max(since, settled), today + timedelta(days=1)))
    days = [DayCounts(day, known.get(day, Counts())) for day in _day_range(since, today + timedelta(days=1))]
    return SiteStats(site=site, since=since, until=today, days=days)


def _day_range(first: date, end: date) -> list[date]:
    """Every day from ``first`` up to, not including, ``end``."""
    return [first + timedelta(days=n) for n in range(max(0, (end - first).days))]


def invalidate_rollups(site: str, days: Iterable[date] | None = None) -> None:
    """Forget the stored counts of ``days`` (every day when None) after records were deleted.

    Call it in the transaction that deletes the records, before its commit: the
    days are counted again from the log the next time they are shown.
    """
    statement = delete(DailyRollup).where(DailyRollup.site == site)
    if days is not None:
        chosen = sorted(set(days))
        if not chosen:
            return
        statement = statement.where(DailyRollup.day.in_(chosen))
    db.session.execute(statement)


ACTION_LABELS = {"accept_all": "accept all", "reject_all": "reject all", "custom": "custom", "withdraw": "withdraw"}
RATE_COLUMNS = (*OPTIONAL, "gpc")


def stats_lines(report: SiteStats) -> list[str]:
    """The terminal table: a row per day and a total, then the totals by action."""
    header = f"{'day':<10}  {'records':>8}" + "".join(f"  {name:>11}" for name in RATE_COLUMNS)
    lines = [f"site {report.site}: {report.since} to {report.until} (UTC days)", header]
    for row in [*((str(d.day), d.counts) for d in report.days), ("total", report.totals)]:
        label, counts = row
        lines.append(
            f"{label:<10}  {counts.records:>8}" + "".join(f"  {percent(counts.rate(n)):>11}" for n in RATE_COLUMNS)
        )
    totals = report.totals
    lines.append("actions: " + ", ".join(f"{ACTION_LABELS[a]} {getattr(totals, a)}" for a in ACTIONS))
    return lines


@click.command("stats")
@click.option("--site", required=True, help="The site key.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="First day (UTC), default 30 days ago.")
@with_appcontext
def stats_command(site: str, since: datetime | None) -> None:
    """Print consent rates per category and day, totals by action and the GPC share."""
    if site not in sites():
        raise click.ClickException(f"unknown site {site!r} (known: {', '.join(sorted(sites()))})")
    for line in stats_lines(site_stats(site, since.date() if since else None)):
        click.echo(line)


def init_app(app: Flask) -> None:
    """Register ``consent stats``."""
    app.cli.add_command(stats_command)
