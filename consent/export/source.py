"""Reading one site's records and ledger for an export, in one snapshot, as fast as the database allows.

Rows are formatted by the database (see export_formats); only ISO/IEC TS
27560 records are built in Python. PostgreSQL, inside a REPEATABLE READ
transaction, joins the lines of each range of ids into one value
(``string_agg``), read by two connections at once: a client that takes rows
one at a time spends about as much CPU as the server. SQLite is read with
plain ``sqlite3`` cursors and ``fetchmany`` inside one read transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from consent.export.formats import COLUMNS, iso27560, sql_csv_line, sql_json_line, sql_values
from consent.ledger import leaves as ledger
from consent.models import db
from consent.snapshot_streams import SnapshotStreams, Spool, id_ranges
from consent.texts import CATEGORIES

FETCH = 2_000
SPAN = 2_500  # ids per PostgreSQL range: about 1 MB of CSV, a few of them in memory at a time


class ExportSource:
    """One site's records from ``since`` (inclusive) to ``until`` (exclusive), and its ledger."""

    def __init__(self, site: str, since: datetime | None, until: datetime | None) -> None:
        self.site, self.since, self.until = site, since, until
        self.scope = tuple(ledger.epoch_ms(m) if m is not None else None for m in (since, until))
        self.spool: Spool | None = None
        self.session: Session | None = None
        self.proof: dict[str, Any] = {}

    def __enter__(self) -> ExportSource:
        connection = db.engine.connect()
        self.dialect = connection.dialect.name
        if self.dialect == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        self.connection: Connection = connection
        self.raw: Any = connection.connection.driver_connection
        if self.dialect == "postgresql":
            self.raw.execute("SELECT 1")  # the snapshot starts here
        else:
            self.raw.execute("BEGIN")  # one read transaction: one snapshot (WAL)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.spool is not None:
            self.spool.close()
        if self.session is not None:
            self.session.close()
        self.connection.close()  # rolls back: nothing was written

    def _where(self) -> tuple[str, list[Any]]:
        mark = "%s" if self.dialect == "postgresql" else "?"
        # Without a range, "+site" makes SQLite read in id order instead of sorting the site's index.
        unranged = self.since is None and self.until is None and self.dialect == "sqlite"
        clauses, params = [f"{'+' if unranged else ''}site = {mark}"], [self.site]
        for operator, moment in ((">=", self.since), ("<", self.until)):
            if moment is not None:
                clauses.append(f"recorded_at {operator} {mark}")
                # SQLite compares the stored text: naive UTC with microseconds.
                params.append(moment if self.dialect == "postgresql" else moment.strftime("%Y-%m-%d %H:%M:%S.%f"))
        return " AND ".join(clauses), params

    def chunks(self, fmt: str, public: dict[str, Any]) -> Iterator[tuple[bytes, int]]:
        """The records as (bytes, how many records) chunks, oldest first."""
        if fmt == "iso27560":
            for record in self._records():
                yield (
                    (json.dumps(iso27560(record, public), separators=(",", ":"), ensure_ascii=False) + "\n").encode(),
                    1,
                )
        elif self.dialect == "postgresql":
            yield from self._ranges(fmt)
        else:
            line = sql_csv_line(self.dialect) if fmt == "csv" else sql_json_line(self.dialect)
            where, params = self._where()
            cursor = self.raw.execute(
                f"SELECT CAST({line} AS BLOB) FROM consent_records WHERE {where} ORDER BY id", params
            )
            while rows := cursor.fetchmany(FETCH):
                yield b"".join([row[0] for row in rows]), len(rows)

    def _ranges(self, fmt: str) -> Iterator[tuple[bytes, int]]:
        """PostgreSQL: each range of ids as one value holding its lines, in id order."""
        where, params = self._where()
        line = sql_csv_line(self.dialect) if fmt == "csv" else sql_json_line(self.dialect)
        query = (
            f"SELECT convert_to(string_agg({line}, '' ORDER BY id), 'UTF8'), count(*) FROM consent_records "
            f"WHERE {where} AND id >= %s AND id <= %s"
        )
        # The snapshot of this transaction, shared with the connections that read the ranges.
        snapshot = self.raw.execute("SELECT pg_export_snapshot()").fetchone()[0]
        first, last = self.raw.execute(f"SELECT min(id), max(id) FROM consent_records WHERE {where}", params).fetchone()
        if first is None:
            return

        def read(raw: psycopg.Connection[Any], low: int, high: int) -> Iterator[tuple[bytes, int]]:
            data, rows = raw.execute(query, [*params, low, high], binary=True).fetchone()
            if rows:
                yield data, rows

        conninfo = db.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
        yield from SnapshotStreams(conninfo, snapshot, id_ranges(first, last, SPAN), read)

    def _records(self) -> Iterator[dict[str, Any]]:
        where, params = self._where()
        query = (
            f"SELECT {', '.join(sql_values(self.dialect, csv=False))} FROM consent_records WHERE {where} ORDER BY id"
        )
        cursor = self.raw.cursor(name="export") if self.dialect == "postgresql" else self.raw.cursor()
        cursor.execute(query, params)
        while rows := cursor.fetchmany(FETCH):
            for row in rows:
                record = dict(zip(COLUMNS, row, strict=True))
                for name in (*CATEGORIES, "gpc", "dnt"):
                    record[name] = record[name] == "true"
                yield record
        cursor.close()

    def trailer(self, fmt: str, rows: int, now: datetime) -> Iterator[bytes]:
        """Nothing: an export is a plain table; its proof travels beside it."""
        return iter(())
