"""Time a site's dashboard on a big consent log (default: 1 M records over the last 365 days).

    python3 bench/dashboard_bench.py                        # a temporary SQLite file
    python3 bench/dashboard_bench.py --postgres postgresql://127.0.0.1:5432/test

Records are bulk-inserted straight into the log, then ``GET /admin/sites/demo``
is requested through the Flask test client with the admin token: once with no
daily roll-ups stored (the first view after a deployment or an invalidation),
then five times; the median of those five is the figure. ``--days 1`` puts the
whole log into the last day, the worst case for the live part. Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import delete, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consent import create_app  # noqa: E402
from consent.log.stats import SETTLING  # noqa: E402
from consent.store.models import ConsentRecord, DailyRollup, db  # noqa: E402

TOKEN = "bench-admin-token"
BATCH = 50_000
ACTIONS = ("accept_all", "reject_all", "custom", "withdraw")


def make_app(url: str) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "DATABASE_URL": url,
            "ADMIN_TOKENS": TOKEN,
            "INVENTORY": str(ROOT / "cookies.yaml"),
            "RATELIMIT_ENABLED": False,
        }
    )


COLUMNS = (
    "site", "event_id", "consent_id", "recorded_at", "action", "necessary", "functional", "analytics",
    "advertising", "revision", "inventory_hash", "language", "page_url", "ip", "user_agent", "gpc", "dnt",
    "record_hash",
)  # fmt: skip


def rows(count: int, days: int, now: datetime, sqlite: bool) -> Iterator[list[tuple[Any, ...]]]:
    """``count`` plausible records spread evenly over the last ``days`` days, in batches of tuples."""
    chance = random.Random(42)
    start = now - timedelta(days=days)
    step = (now - start) / count
    batch = []
    for index in range(count):
        action = chance.choices(ACTIONS, weights=(55, 30, 12, 3))[0]
        everything, custom = action == "accept_all", action == "custom"
        moment: Any = start + step * index
        if sqlite:  # the form SQLAlchemy stores: naive UTC text
            moment = moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        batch.append(
            (
                "demo",
                uuid.uuid4().hex,
                str(uuid.uuid4()),
                moment,
                action,
                True,
                everything or (custom and chance.random() < 0.7),
                everything or (custom and chance.random() < 0.5),
                everything or (custom and chance.random() < 0.2),
                1,
                "0" * 64,
                "en",
                "https://shop.example/products/42",
                "192.0.2.0",
                "Mozilla/5.0 (bench)",
                chance.random() < 0.08,
                False,
                "0" * 64,
            )  # fmt: skip
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(app: Flask, count: int, days: int) -> float:
    """Bulk-load the records: COPY on PostgreSQL, ``executemany`` on SQLite."""
    started = time.perf_counter()
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            names = ", ".join(COLUMNS)
            for batch in rows(count, days, datetime.now(UTC), sqlite):
                if sqlite:
                    marks = ", ".join("?" * len(COLUMNS))
                    cursor.executemany(f"INSERT INTO consent_records ({names}) VALUES ({marks})", batch)
                else:
                    with cursor.copy(f"COPY consent_records ({names}) FROM STDIN") as copy:
                        for row in batch:
                            copy.write_row(row)
            connection.commit()
        finally:
            connection.close()
    return time.perf_counter() - started


def timed_get(app: Flask, path: str) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one request (CPU time holds steadier on a busy machine)."""
    client = app.test_client()
    wall, cpu = time.perf_counter(), time.process_time()
    response = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert response.status_code == 200, response.status_code
    return wall, cpu


def run(url: str, count: int, days: int) -> None:
    app = make_app(url)
    with app.app_context():
        upgrade()
        db.session.execute(delete(ConsentRecord))
        db.session.execute(delete(DailyRollup))
        db.session.commit()
    print(f"inserting {count:,} records over {days} days ...", flush=True)
    print(f"  {fill(app, count, days):.1f} s")
    with app.app_context():
        now = datetime.now(UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for label, start in (("today", today), ("in the last 5 minutes (counted live on every view)", now - SETTLING)):
            recent = db.session.scalar(select(func.count()).where(ConsentRecord.recorded_at >= start))
            print(f"records {label}: {recent:,}")
    for path in (
        "/admin/sites/demo",
        "/admin/sites/demo?since=" + (datetime.now(UTC) - timedelta(days=364)).date().isoformat(),
    ):
        with app.app_context():
            db.session.execute(delete(DailyRollup))
            db.session.commit()
        cold_wall, cold_cpu = timed_get(app, path)
        warm = [timed_get(app, path) for _ in range(5)]
        wall, cpu = (statistics.median(sample) * 1000 for sample in zip(*warm, strict=True))
        print(f"GET {path}")
        cold = f"{cold_wall * 1000:.0f} ms ({cold_cpu * 1000:.0f} ms CPU in this process)"
        print(f"  first view (no roll-ups stored): {cold}")
        print(f"  then, median of 5: {wall:.0f} ms ({cpu:.0f} ms CPU in this process)")
    with app.app_context():
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--postgres", help="a PostgreSQL URL; a scratch schema is made there and dropped")
    arguments = parser.parse_args()
    if arguments.postgres:
        schema = f"dashboard_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(arguments.postgres, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        try:
            run(f"{arguments.postgres}?options=-csearch_path%3D{schema}", arguments.records, arguments.days)
        finally:
            with psycopg.connect(arguments.postgres, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        return
    with tempfile.TemporaryDirectory() as folder:
        run(f"sqlite:///{folder}/bench.db", arguments.records, arguments.days)


if __name__ == "__main__":
    main()
