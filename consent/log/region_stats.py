"""Consent counts per day, regime and country, stored beside the day counts (consent.log.stats) and kept with them.

Each (site, day, regime, country) row counts the same records as its day's
``daily_rollups`` row, up to that row's ``counted_until``: they are written
together, in the same transaction, by the view that moves the mark. The
country is the region's part before the dash (``US`` of ``US-CA``); records
without a regime or region count under an empty one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select

from consent.log.counts import COUNTED, Counts, as_date, count_columns, in_span, utc_day
from consent.store.database import dialect_insert
from consent.store.models import ConsentRecord, RegionRollup, db

# (day, regime, country)
Group = tuple[date, str, str]
STORE_BATCH = 500


def count_by_group(site: str, start: datetime, end: datetime) -> dict[Group, Counts]:
    """Count the site's records with ``start <= recorded_at < end`` per UTC day, regime and country."""
    day = utc_day().label("day")
    regime = func.coalesce(ConsentRecord.regime, "").label("regime")
    # Every stored region starts with its two-letter country: DE, US-CA.
    country = func.coalesce(func.substr(ConsentRecord.region, 1, 2), "").label("country")
    rows = db.session.execute(
        select(day, regime, country, *count_columns()).where(*in_span(site, start, end)).group_by(day, regime, country)
    )
    return {(as_date(when), kind, place): Counts(*(int(v) for v in values)) for when, kind, place, *values in rows}


def _values(site: str, groups: dict[Group, Counts]) -> list[dict[str, Any]]:
    return [
        {"site": site, "day": day, "regime": regime, "country": country, **asdict(counts)}
        for (day, regime, country), counts in sorted(groups.items())
    ]


def store_groups(site: str, groups: dict[Group, Counts]) -> None:
    """Store the counts of days counted for the first time (a second view counting them too stores the same)."""
    values = _values(site, groups)
    keys = ["site", "day", "regime", "country"]
    for start in range(0, len(values), STORE_BATCH):
        statement = dialect_insert(RegionRollup).values(values[start : start + STORE_BATCH])
        db.session.execute(statement.on_conflict_do_nothing(index_elements=keys))


def add_groups(site: str, groups: dict[Group, Counts]) -> None:
    """Add counts to stored groups (new groups are inserted), for a day whose mark this view moved."""
    keys = ["site", "day", "regime", "country"]
    for values in _values(site, groups):
        statement = dialect_insert(RegionRollup).values(values)
        increments = {name: getattr(RegionRollup, name) + statement.excluded[name] for name in COUNTED}
        db.session.execute(statement.on_conflict_do_update(index_elements=keys, set_=increments))


def stored_groups(site: str, first: date, last: date) -> dict[Group, Counts]:
    """The stored groups of the days ``first`` to ``last``."""
    query = select(RegionRollup).where(RegionRollup.site == site, RegionRollup.day >= first, RegionRollup.day <= last)
    return {
        (row.day, row.regime, row.country): Counts(*(getattr(row, name) for name in COUNTED))
        for row in db.session.scalars(query)
    }


def forget_groups(site: str, days: Iterable[date] | None) -> None:
    """Delete the stored groups of ``days`` (every day when None), with their day counts."""
    statement = delete(RegionRollup).where(RegionRollup.site == site)
    if days is not None:
        statement = statement.where(RegionRollup.day.in_(sorted(set(days))))
    db.session.execute(statement)


def totals_by(groups: dict[Group, Counts], part: str) -> dict[str, Counts]:
    """The groups' counts summed by ``regime`` or ``country``, largest first."""
    totals: dict[str, Counts] = {}
    for (_, regime, country), counts in groups.items():
        name = regime if part == "regime" else country
        totals[name] = totals.get(name, Counts()) + counts
    return dict(sorted(totals.items(), key=lambda item: (-item[1].records, item[0])))
