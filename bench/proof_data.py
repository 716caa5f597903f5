"""Fill a database with a large consent log quickly, for the export and verify benchmarks.

Rows look like real ones (random consent IDs, user agents with commas, a few
visitors with several records) and carry correct record hashes, computed with
the service's own canonical encoding (consent.ledger.canonical). They are not
sealed: run ``consent seal`` afterwards for the seals, tiles and signed head. SQLite is filled with
``executemany``, PostgreSQL with ``COPY``; a few seconds per 100 k rows.

    python3 bench/proof_data.py --database-url sqlite:///instance/bench.db --rows 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consent.ledger.canonical import HASHED_FIELDS, record_hash  # noqa: E402

COLUMNS = ("id", "event_id", *HASHED_FIELDS, "record_hash")
MOMENT_AT = COLUMNS.index("recorded_at")
BATCH = 10_000
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) "quoted" AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1',
)
PAGES = ("https://shop.example/", "https://shop.example/products/42", "https://shop.example/nl/winkelmand")


def fake_records(site: str, inventory_hash: str, count: int, start: datetime, first_id: int = 1) -> Iterator[tuple]:
    """``count`` plausible records of ``site``, one every ~30 ms from ``start``, ids from ``first_id``."""
    rng = random.Random(first_id)
    moment = start
    consent_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    for record_id in range(first_id, first_id + count):
        if rng.random() > 0.1:  # one visitor in ten comes back and changes their mind
            consent_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        moment += timedelta(milliseconds=rng.randint(1, 60))
        action = rng.choice(("accept_all", "reject_all", "custom", "withdraw"))
        granted = action in ("accept_all", "custom")
        values: dict[str, Any] = {
            "site": site,
            "consent_id": consent_id,
            "recorded_at": moment,
            "action": action,
            "necessary": True,
            "functional": granted,
            "analytics": granted and rng.random() < 0.7,
            "advertising": action == "accept_all",
            "revision": 1,
            "inventory_hash": inventory_hash,
            "language": rng.choice(("en", "nl")),
            "page_url": rng.choice(PAGES),
            "ip": f"198.51.{rng.randint(0, 255)}.0",
            "user_agent": rng.choice(USER_AGENTS),
            "gpc": rng.random() < 0.05,
            "dnt": rng.random() < 0.1,
        }
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield (record_id, event_id, *(values[field] for field in HASHED_FIELDS), record_hash(values))


def fill(database_url: str, site: str, inventory_hash: str, count: int, start: datetime | None = None) -> None:
    """Append ``count`` records of ``site`` after the highest id in the log."""
    start = (start or datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)
    if database_url.startswith("sqlite"):
        _fill_sqlite(database_url.removeprefix("sqlite:///"), site, inventory_hash, count, start)
    else:
        _fill_postgresql(database_url, site, inventory_hash, count, start)


def _fill_sqlite(path: str, site: str, inventory_hash: str, count: int, start: datetime) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    first_id = (connection.execute("SELECT max(id) FROM consent_records").fetchone()[0] or 0) + 1
    marks = ",".join("?" * len(COLUMNS))
    statement = f"INSERT INTO consent_records ({','.join(COLUMNS)}) VALUES ({marks})"
    batch: list[tuple] = []
    for row in fake_records(site, inventory_hash, count, start, first_id):
        # The service stores SQLite timestamps as naive UTC text with microseconds.
        moment = row[MOMENT_AT].strftime("%Y-%m-%d %H:%M:%S.%f")
        batch.append((*row[:MOMENT_AT], moment, *row[MOMENT_AT + 1 :]))
        if len(batch) == BATCH:
            connection.executemany(statement, batch)
            batch.clear()
    connection.executemany(statement, batch)
    connection.commit()
    connection.close()


def _fill_postgresql(url: str, site: str, inventory_hash: str, count: int, start: datetime) -> None:
    import psycopg

    with psycopg.connect(url) as connection:
        first_id = (connection.execute("SELECT max(id) FROM consent_records").fetchone()[0] or 0) + 1
        with connection.cursor().copy(f"COPY consent_records ({','.join(COLUMNS)}) FROM STDIN") as copy:
            for row in fake_records(site, inventory_hash, count, start, first_id):
                copy.write_row(row)
        sequence = connection.execute("SELECT pg_get_serial_sequence('consent_records', 'id')").fetchone()[0]
        connection.execute("SELECT setval(%s, (SELECT max(id) FROM consent_records))", (sequence,))


def main() -> None:
    """Fill the database named on the command line (migrated already, e.g. by ``consent db upgrade``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--site", default="demo")
    parser.add_argument("--inventory-hash", default="0" * 64)
    parser.add_argument("--rows", type=int, default=1_000_000)
    arguments = parser.parse_args()
    fill(arguments.database_url, arguments.site, arguments.inventory_hash, arguments.rows)


if __name__ == "__main__":
    main()
