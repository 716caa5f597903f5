"""PostgreSQL monthly partitions of the consent log: a purge drops whole months instead of deleting rows.

Partitioning is switched on by hand (docs/operations.md, "Retention, erasure and
partitions"); this module only finds the partitions and drops those whose
every row is past retention.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import text

from consent.store.models import db

BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(re.sub(r"([+-]\d\d)$", r"\1:00", value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def log_is_partitioned() -> bool:
    """Whether ``consent_records`` is a partitioned table (PostgreSQL only)."""
    if db.engine.dialect.name != "postgresql":
        return False
    with db.engine.connect() as connection:
        kind = connection.scalar(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('consent_records')"))
    return kind == "p"


def month_partitions() -> list[tuple[str, datetime, datetime]]:
    """(name, from, to) of each range partition of ``consent_records``; empty if it is not partitioned."""
    if db.engine.dialect.name != "postgresql":
        return []
    rows = db.session.execute(
        text(
            "SELECT child.relname, pg_get_expr(child.relpartbound, child.oid) "
            "FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = to_regclass('consent_records')"
        )
    ).all()
    found = []
    for name, bound in rows:
        match = BOUNDS.search(bound or "")
        if match:
            found.append((str(name), _moment(match.group(1)), _moment(match.group(2))))
    return sorted(found, key=lambda partition: partition[1])


def drop_partitions_before(site: str, cutoff: datetime) -> int:
    """Drop the partitions that end by ``cutoff`` and hold only ``site``'s records; how many."""
    dropped = 0
    for name, _, until in month_partitions():
        if until > cutoff:
            continue
        others = db.session.execute(text(f'SELECT 1 FROM "{name}" WHERE site <> :site LIMIT 1'), {"site": site})
        if others.first() is None:
            db.session.execute(text(f'ALTER TABLE consent_records DETACH PARTITION "{name}"'))
            db.session.execute(text(f'DROP TABLE "{name}"'))
            dropped += 1
    return dropped
