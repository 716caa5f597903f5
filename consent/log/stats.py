"""Consent statistics per site and UTC day: the numbers of the dashboard and of ``consent stats``.

Counting is done on read, never on the path that records consent, and kept in
``daily_rollups``: each site's day holds its counts up to ``counted_until``.
A view counts only what was recorded since then, adds it and moves the mark,
so however large the log, a view reads stored rows plus a few minutes of
records. The mark stays a few minutes behind the clock (records are timed
before they are committed); those last minutes are counted live each time.
Records of the past change only when purged or forgotten: that code calls
``invalidate_rollups`` for the days it touched, which are then counted anew.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import ColumnElement, Date, Integer, case, cast, delete, func, select, update

from consent.inventory.sites import sites
from consent.log.recording import ACTIONS, OPTIONAL
from consent.store.database import dialect_insert
from consent.store.models import ConsentRecord, DailyRollup, db
from consent.timestamps import utcnow

DEFAULT_DAYS = 30
MAX_DAYS = 3660
# A record is timed before it is committed: counts are stored only up to a
# few minutes ago, when no record of that time can still be on its way.
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
    opt_out: int = 0
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


def count_by_day(site: str, start: datetime, end: datetime) -> dict[date, Counts]:
    """Count the site's records with ``start <= recorded_at < end`` per UTC day, in one query."""
    record = ConsentRecord
    day = _utc_day().label("day")
    columns: list[Any] = [day, func.count()]
    columns += [func.sum(case((record.action == action, 1), else_=0)) for action in ACTIONS]
    columns += [func.sum(cast(getattr(record, part), Integer)) for part in (*OPTIONAL, "gpc")]
    rows = db.session.execute(
        select(*columns)
        .where(
            record.site == site,
            record.recorded_at >= start,
            record.recorded_at < end,
            record.action.in_(ACTIONS),
        )
        .group_by(day)
    )
    return {
        when if isinstance(when, date) else date.fromisoformat(when): Counts(*(int(v) for v in values))
        for when, *values in rows
    }


def _stored(site: str, first: date, last: date) -> dict[date, DailyRollup]:
    query = select(DailyRollup).where(DailyRollup.site == site, DailyRollup.day >= first, DailyRollup.day <= last)
    return {row.day: row for row in db.session.scalars(query)}


def _counts(row: DailyRollup) -> Counts:
    return Counts(*(getattr(row, f.name) for f in fields(Counts)))


def _insert_days(site: str, counted: dict[date, Counts], marks: dict[date, datetime]) -> None:
    now = utcnow()
    values = [
        {"site": site, "day": day, **asdict(counts), "counted_until": marks[day], "computed_at": now}
        for day, counts in sorted(counted.items())
    ]
    for start in range(0, len(values), STORE_BATCH):
        # Two views may count the same day at once: the first stored wins, and both are equal.
        statement = dialect_insert(DailyRollup).values(values[start : start + STORE_BATCH])
        db.session.execute(statement.on_conflict_do_nothing(index_elements=["site", "day"]))


def _advance_day(row: DailyRollup, added: Counts, mark: datetime) -> None:
    """Add ``added`` to a stored day and move its mark, unless another view moved it first."""
    increments = {f.name: getattr(DailyRollup, f.name) + getattr(added, f.name) for f in fields(Counts)}
    db.session.execute(
        update(DailyRollup)
        .where(DailyRollup.site == row.site, DailyRollup.day == row.day, DailyRollup.counted_until == row.counted_until)
        .values(**increments, counted_until=mark, computed_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _first_record_day(site: str) -> date | None:
    first = db.session.scalar(select(func.min(ConsentRecord.recorded_at)).where(ConsentRecord.site == site))
    return None if first is None else first.astimezone(UTC).date()


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
    """Counts per day from ``since`` (default: the last 30 days) to today, stored counts brought up to date."""
    now = now or utcnow()
    today = now.date()
    since = max(since or default_since(today), today - timedelta(days=MAX_DAYS - 1))
    horizon = now - SETTLING  # recorded before this, a record is in the log
    stored = _stored(site, since, today)
    first = _first_record_day(site)
    wanted = [day for day in _day_range(since, today + timedelta(days=1)) if first is not None and day >= first]
    marks = {day: min(_midnight(day + timedelta(days=1)), horizon) for day in wanted}
    marks = {day: mark for day, mark in marks.items() if mark > _midnight(day)}
    known = {day: _counts(row) for day, row in stored.items()}
    # Days never counted: one query per run of consecutive days.
    fresh = [day for day in marks if day not in stored]
    counted: dict[date, Counts] = {}
    for first_day, end_day in _runs(fresh):
        found = count_by_day(site, _midnight(first_day), min(_midnight(end_day), horizon))
        counted.update({day: found.get(day, Counts()) for day in _day_range(first_day, end_day)})
    _insert_days(site, counted, marks)
    known.update(counted)
    # Days counted up to an earlier mark (today, mostly): only the records since.
    for day, row in stored.items():
        if day in marks and row.counted_until < marks[day]:
            added = count_by_day(site, row.counted_until, marks[day]).get(day, Counts())
            _advance_day(row, added, marks[day])
            known[day] = known[day] + added
    db.session.commit()
    # The last minutes, not yet settled: counted live on every view.
    for day, counts in count_by_day(site, max(horizon, _midnight(since)), now + SETTLING).items():
        known[day] = known.get(day, Counts()) + counts
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


ACTION_LABELS = {
    "accept_all": "accept all", "reject_all": "reject all", "custom": "custom", "withdraw": "withdraw",
    "opt_out": "opt out",
}  # fmt: skip
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
