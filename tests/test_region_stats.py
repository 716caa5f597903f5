"""Consent rates by regime and by country: counted with the day roll-ups, in ``consent stats`` and the dashboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from consent.log.stats import invalidate_rollups, site_stats
from consent.store.models import RegionRollup, db
from tests.support.admin_seed import record, seed

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
TODAY = NOW.date()


def at(days_ago: int, hour: int = 12) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


def regional(when: datetime, action: str, regime: str | None, region: str | None, **kwargs: Any) -> dict[str, Any]:
    values = record("demo", when, action, **kwargs)
    return {**values, "regime": regime, "region": region, "sec_gpc": None if regime is None else False}


def mixed(app) -> None:
    seed(
        app,
        [
            regional(at(2), "accept_all", None, None),  # from before regions
            regional(at(2), "opt_out", "opt-out", "US-CA", functional=True, analytics=True),
            regional(at(2), "accept_all", "opt-out", "US-CO"),
            regional(at(1), "reject_all", "opt-in", "DE"),
            regional(at(1), "custom", "opt-in", "DE-BY", analytics=True),
            regional(at(1), "accept_all", "notice", "US-NY"),
            regional(at(0, 1), "withdraw", "opt-in", None),
        ],
    )


def test_rates_by_regime_and_by_country(app) -> None:
    mixed(app)
    with app.app_context():
        report = site_stats("demo", TODAY - timedelta(days=6), NOW)
    regimes = {name: (c.records, c.refusals, c.advertising) for name, c in report.by_regime.items()}
    assert regimes == {"opt-in": (3, 2, 0), "opt-out": (2, 1, 1), "notice": (1, 0, 1), "": (1, 0, 1)}
    countries = {name: (c.records, c.refusals, c.analytics) for name, c in report.by_country.items()}
    assert countries == {"US": (3, 1, 3), "DE": (2, 1, 1), "": (2, 1, 1)}
    # Largest first.
    assert list(report.by_country)[0] == "US" and list(report.by_regime)[0] == "opt-in"
    assert report.by_regime["opt-out"].rate("refusals") == 0.5


def test_the_breakdown_follows_the_period(app) -> None:
    mixed(app)
    with app.app_context():
        report = site_stats("demo", TODAY - timedelta(days=1), NOW)
    assert {name: c.records for name, c in report.by_regime.items()} == {"opt-in": 3, "notice": 1}


def stored_total(app) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.coalesce(func.sum(RegionRollup.records), 0))))


def test_group_counts_are_stored_and_brought_up_to_date_without_counting_twice(app) -> None:
    mixed(app)
    with app.app_context():
        first = site_stats("demo", TODAY - timedelta(days=6), NOW)
    # Every record is older than the settling minutes: all are stored.
    assert stored_total(app) == 7
    # A record after the first view, settled by the next ones: today's counts move their mark.
    seed(app, [regional(NOW + timedelta(minutes=1), "opt_out", "opt-out", "US-CA")])
    with app.app_context():
        later = site_stats("demo", TODAY - timedelta(days=6), NOW + timedelta(minutes=10))
        again = site_stats("demo", TODAY - timedelta(days=6), NOW + timedelta(minutes=11))
    assert first.by_regime["opt-out"].records == 2
    assert later.by_regime["opt-out"].records == again.by_regime["opt-out"].records == 3
    assert later.by_country == again.by_country
    assert stored_total(app) == 8


def test_records_still_settling_are_counted_live(app) -> None:
    mixed(app)
    seed(app, [regional(NOW - timedelta(minutes=1), "accept_all", "none", "JP")])
    with app.app_context():
        report = site_stats("demo", TODAY - timedelta(days=6), NOW)
    assert report.by_country["JP"].records == 1 and report.by_regime["none"].records == 1
    assert stored_total(app) == 7  # the settling one is not stored yet


def test_invalidated_days_are_counted_again_by_region_too(app) -> None:
    mixed(app)
    with app.app_context():
        site_stats("demo", TODAY - timedelta(days=6), NOW)
        db.session.execute(db.text("DELETE FROM consent_records WHERE region = 'US-CO'"))
        invalidate_rollups("demo", [TODAY - timedelta(days=2)])
        db.session.commit()
        report = site_stats("demo", TODAY - timedelta(days=6), NOW)
    assert report.by_regime["opt-out"].records == 1
    assert report.by_country["US"].records == 2
    assert stored_total(app) == 6


def test_consent_stats_prints_rates_by_regime_and_country(app, runner) -> None:
    now = datetime.now(UTC)
    seed(
        app,
        [
            regional(now - timedelta(days=1), "opt_out", "opt-out", "US-CA", functional=True, analytics=True),
            regional(now - timedelta(days=1), "accept_all", "opt-out", "US-CA"),
            regional(now - timedelta(days=1), "reject_all", "opt-in", "FR"),
            regional(now - timedelta(days=1), "accept_all", None, None),
        ],
    )
    result = runner.invoke(args=["stats", "--site", "demo"])
    assert result.exit_code == 0, result.output
    output = result.output
    assert re.search(r"^by regime\s+records\s+refused\s+functional\s+analytics\s+advertising\s+gpc$", output, re.M)
    assert re.search(r"^opt-out\s+2\s+50\.0 %\s+100\.0 %\s+100\.0 %\s+50\.0 %\s+0\.0 %$", output, re.M), output
    assert re.search(r"^opt-in\s+1\s+100\.0 %\s+0\.0 %\s+0\.0 %\s+0\.0 %\s+0\.0 %$", output, re.M), output
    assert re.search(r"^\(before regions\)\s+1\s+0\.0 %\s+100\.0 %", output, re.M), output
    assert re.search(r"^US\s+2\s+50\.0 %", output, re.M) and re.search(r"^FR\s+1\s+100\.0 %", output, re.M)
    assert re.search(r"^\(unknown\)\s+1\s+0\.0 %", output, re.M), output


def test_the_dashboard_shows_rates_by_regime_and_country(app, client, admin_headers) -> None:
    now = datetime.now(UTC)
    seed(
        app,
        [
            regional(now - timedelta(days=1), "opt_out", "opt-out", "US-CA", functional=True, analytics=True),
            regional(now - timedelta(days=1), "accept_all", "notice", "US-NY"),
            regional(now - timedelta(days=1), "reject_all", "opt-in", "DE"),
        ],
    )
    page = client.get("/admin/sites/demo", headers=admin_headers).get_data(as_text=True)
    regime_table = page[page.index('id="by-regime"') : page.index("</table>", page.index('id="by-regime"'))]
    row = re.search(r'<tr data-regime="opt-out">(.*?)</tr>', regime_table, re.S)
    assert row, regime_table
    assert re.search(r'<td class="num">1</td>\s*<td class="num" data-part="refused">100\.0 %</td>', row.group(1))
    assert '<td class="num" data-part="advertising">0.0 %</td>' in row.group(1)
    country_table = page[page.index('id="by-country"') : page.index("</table>", page.index('id="by-country"'))]
    us = re.search(r'<tr data-country="US">(.*?)</tr>', country_table, re.S)
    assert us and '<td class="num">2</td>' in us.group(1) and 'data-part="refused">50.0 %' in us.group(1)
    assert re.search(r'<tr data-country="DE">.*?data-part="refused">100\.0 %', country_table, re.S)
