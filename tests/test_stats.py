"""Consent statistics: per-day rates, totals, daily roll-ups and their invalidation, ``consent stats``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from consent.log.stats import Counts, invalidate_rollups, percent, site_stats
from consent.store.models import DailyRollup, db
from tests.support.admin_seed import record, seed

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
TODAY = NOW.date()


def at(days_ago: int, hour: int = 12) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


def three_days(app):
    seed(
        app,
        [
            # Two days ago: 4 records, analytics granted by 3 of 4, one with GPC.
            record("demo", at(2, 0)),
            record("demo", at(2, 8), "custom", analytics=True, functional=True),
            record("demo", at(2, 16), "custom", analytics=True, gpc=True),
            record("demo", at(2, 23) + timedelta(minutes=59, seconds=59), "reject_all"),
            # Yesterday: 1 record, withdrawn.
            record("demo", at(1), "withdraw"),
            # Today: 2 records.
            record("demo", at(0, 1), "accept_all", gpc=True),
            record("demo", at(0, 2), "reject_all"),
        ],
    )


def by_day(report):
    return {day.day: day.counts for day in report.days}


def test_counts_per_day_totals_and_rates(app):
    three_days(app)
    with app.app_context():
        report = site_stats("demo", TODAY - timedelta(days=2), now=NOW)
    days = by_day(report)
    assert list(days) == [TODAY - timedelta(days=n) for n in (2, 1, 0)]
    assert days[TODAY - timedelta(days=2)] == Counts(
        records=4, accept_all=1, reject_all=1, custom=2, functional=2, analytics=3, advertising=1, gpc=1
    )
    assert days[TODAY - timedelta(days=1)] == Counts(records=1, withdraw=1)
    assert days[TODAY] == Counts(records=2, accept_all=1, reject_all=1, functional=1, analytics=1, advertising=1, gpc=1)
    totals = report.totals
    assert (totals.records, totals.accept_all, totals.reject_all, totals.custom, totals.withdraw) == (7, 2, 2, 2, 1)
    assert percent(totals.rate("analytics")) == "57.1 %"
    assert percent(totals.rate("gpc")) == "28.6 %"
    assert percent(Counts().rate("analytics")) == "–"


def test_default_period_is_the_last_30_days_and_starts_empty(app):
    with app.app_context():
        report = site_stats("demo", now=NOW)
    assert report.since == TODAY - timedelta(days=29) and report.until == TODAY
    assert len(report.days) == 30 and report.totals == Counts()


def marks(app):
    with app.app_context():
        return {row.day: (row.records, row.counted_until) for row in db.session.scalars(select(DailyRollup))}


def test_counted_days_are_stored_and_read_back_until_invalidated(app):
    three_days(app)
    with app.app_context():
        site_stats("demo", TODAY - timedelta(days=5), now=NOW)
    # From the first record on (not the empty days before), each up to its end or five minutes ago.
    assert marks(app) == {
        TODAY - timedelta(days=2): (4, datetime.combine(TODAY - timedelta(days=1), datetime.min.time(), UTC)),
        TODAY - timedelta(days=1): (1, datetime.combine(TODAY, datetime.min.time(), UTC)),
        TODAY: (2, NOW - timedelta(minutes=5)),
    }
    # A record slipped into a stored day is not seen until that day is invalidated...
    seed(app, [record("demo", at(1, 3), "custom", advertising=True)])
    with app.app_context():
        assert by_day(site_stats("demo", TODAY - timedelta(days=5), now=NOW))[TODAY - timedelta(days=1)].records == 1
        invalidate_rollups("demo", [TODAY - timedelta(days=1)])
        db.session.commit()
        again = by_day(site_stats("demo", TODAY - timedelta(days=5), now=NOW))
    # ...then it is counted again from the log, and other days were left alone.
    assert again[TODAY - timedelta(days=1)] == Counts(records=2, withdraw=1, custom=1, advertising=1)
    assert again[TODAY - timedelta(days=2)].records == 4


def test_today_adds_only_what_was_recorded_since_the_last_view(app):
    three_days(app)
    with app.app_context():
        assert by_day(site_stats("demo", TODAY, now=NOW))[TODAY].records == 2
    # Within the last five minutes: counted live, not stored yet.
    seed(app, [record("demo", NOW - timedelta(minutes=1), "withdraw")])
    with app.app_context():
        assert by_day(site_stats("demo", TODAY, now=NOW))[TODAY].records == 3
    assert marks(app)[TODAY] == (2, NOW - timedelta(minutes=5))
    # Ten minutes on, the record is added to the stored count and the mark moves.
    later = NOW + timedelta(minutes=10)
    seed(app, [record("demo", later - timedelta(minutes=1), "reject_all")])
    with app.app_context():
        assert by_day(site_stats("demo", TODAY, now=later))[TODAY] == Counts(
            records=4, accept_all=1, reject_all=2, withdraw=1, functional=1, analytics=1, advertising=1, gpc=1
        )
    assert marks(app)[TODAY] == (3, later - timedelta(minutes=5))
    # Counting is incremental: a record timed before the mark but written late is not re-read.
    seed(app, [record("demo", at(0, 3), "reject_all")])
    with app.app_context():
        assert by_day(site_stats("demo", TODAY, now=later))[TODAY].records == 4


def test_just_after_midnight_yesterday_is_finished_on_a_later_view(app):
    three_days(app)
    midnight = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC)
    seed(app, [record("demo", midnight - timedelta(minutes=1), "reject_all")])
    with app.app_context():
        first = by_day(site_stats("demo", TODAY - timedelta(days=1), now=midnight + timedelta(minutes=2)))
    assert first[TODAY - timedelta(days=1)].records == 2  # the late one counted live
    assert marks(app)[TODAY - timedelta(days=1)] == (1, midnight - timedelta(minutes=3))
    assert TODAY not in marks(app)
    with app.app_context():
        site_stats("demo", TODAY - timedelta(days=1), now=midnight + timedelta(minutes=10))
    assert marks(app)[TODAY - timedelta(days=1)] == (2, midnight)


def test_invalidating_every_day_of_a_site_leaves_other_sites(app):
    three_days(app)
    seed(app, [record("other", at(2))])
    with app.app_context():
        site_stats("demo", TODAY - timedelta(days=3), now=NOW)
        site_stats("other", TODAY - timedelta(days=3), now=NOW)
        invalidate_rollups("demo")
        invalidate_rollups("demo", [])
        db.session.commit()
        assert set(db.session.scalars(select(DailyRollup.site))) == {"other"}


def test_records_of_unknown_actions_are_not_counted(app):
    tombstone = record("demo", at(1))
    tombstone["action"] = "erased"
    seed(app, [tombstone, record("demo", at(1), "reject_all")])
    with app.app_context():
        assert by_day(site_stats("demo", TODAY - timedelta(days=1), now=NOW))[TODAY - timedelta(days=1)].records == 1


def test_periods_are_capped_at_ten_years(app):
    with app.app_context():
        report = site_stats("demo", date(1990, 1, 1), now=NOW)
    assert len(report.days) == 3660


def test_stats_command_prints_the_dashboards_numbers(app, runner, client, admin_headers):
    now = datetime.now(UTC)
    seed(
        app,
        [
            record("demo", now - timedelta(days=1)),
            record("demo", now - timedelta(days=1), "custom", analytics=True, gpc=True),
            record("demo", now - timedelta(days=1), "reject_all"),
            record("demo", now - timedelta(minutes=1), "withdraw"),
        ],
    )
    since = (now - timedelta(days=3)).date().isoformat()
    result = runner.invoke(args=["stats", "--site", "demo", "--since", since])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.match(r"total\s+4\s+25\.0 %\s+50\.0 %\s+25\.0 %\s+25\.0 %$", lines[-2]), lines[-2]
    assert lines[-1] == "actions: accept all 1, reject all 1, custom 1, withdraw 1, opt out 0"
    yesterday = (now - timedelta(days=1)).date().isoformat()
    assert re.search(rf"^{yesterday}\s+3\s+33\.3 %\s+66\.7 %\s+33\.3 %\s+33\.3 %$", result.output, re.M)
    page = client.get(f"/admin/sites/demo?since={since}", headers=admin_headers).get_data(as_text=True)
    assert "<dt>Analytics opt-in</dt><dd>50.0 %</dd>" in page and 'id="gpc-share">25.0 %<' in page


def test_stats_command_refuses_an_unknown_site_and_a_bad_date(runner):
    unknown = runner.invoke(args=["stats", "--site", "nope"])
    assert unknown.exit_code == 1 and "unknown site 'nope'" in unknown.output
    assert runner.invoke(args=["stats", "--site", "demo", "--since", "March"]).exit_code == 2
