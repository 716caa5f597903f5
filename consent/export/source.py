"""Reading one site's records for an export, in one snapshot, as fast as the database allows.

What an export holds is decided first, in the same snapshot: the leaf range
under one signed head (consent.export.proof.export_range), and with it the
record ids ``first_id..last_id``. The rows are then ``site = ? AND id BETWEEN
first_id AND last_id``, read through the primary key, so that the file and
its proof describe the same records, and a record inserted behind the
ledger's back among them is exported (and named by the verifier).

Rows are formatted by the database (see consent.export.formats); only ISO/IEC
TS 27560 records are built in Python (consent.export.dpv). PostgreSQL, inside a REPEATABLE READ
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
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from consent.export.dpv import RecordBuilder
from consent.export.formats import COLUMNS, sql_csv_line, sql_json_line, sql_values
from consent.export.proof import ExportRange, export_range, proof_chunks
from consent.inventory.texts import CATEGORIES
from consent.store.database import driver_connection, one_row
from consent.store.models import ConsentRecord, LedgerSeal, db
from consent.store.streams import SnapshotStreams, id_ranges

FETCH = 2_000
SPAN = 1_000  # ids per PostgreSQL range: about 400 KB of CSV, a few of them in memory at a time


class ExportSource:
    """One site's records from ``since`` (inclusive) to ``until`` (exclusive) under one head, and their proof."""

    def __init__(self, site: str, since: datetime | None, until: datetime | None, tree_size: int | None = None) -> None:
        self.site, self.since, self.until, self.tree_size = site, since, until, tree_size
        self.connection: Connection | None = None

    def open(self) -> ExportSource:
        """Start the snapshot and find what the export covers."""
        connection = db.engine.connect()
        self.dialect = connection.dialect.name
        if self.dialect == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        self.connection = connection
        self.conninfo = db.engine.url.render_as_string(hide_password=False).replace(
            "postgresql+psycopg://", "postgresql://"
        )
        self.raw: Any = driver_connection(connection)
        try:
            if self.dialect == "postgresql":
                self.raw.execute("SELECT 1")  # the snapshot starts here
            else:
                self.raw.execute("BEGIN")  # one read transaction: one snapshot (WAL)
            # The proof is read on the same connection: rows and proof come from one snapshot.
            self.session = Session(bind=connection)
            self.range: ExportRange = export_range(self.session, self.site, self.since, self.until, self.tree_size)
        except BaseException:
            connection.close()
            raise
        return self

    def close(self) -> None:
        """End the snapshot (it rolls back: nothing was written); again is harmless."""
        if self.connection is not None:
            self.session.close()
            self.connection.close()
            self.connection = None

    def __enter__(self) -> ExportSource:
        return self if self.connection is not None else self.open()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def left_out(self) -> int:
        """How many records of the time range are newer than the head, so not in this export."""
        size = self.range.head.tree_size if self.range.head is not None else 0
        through = self.session.scalar(
            select(func.max(LedgerSeal.last_id)).where(
                LedgerSeal.site == self.site, LedgerSeal.first_index + LedgerSeal.leaf_count <= size
            )
        )
        # On SQLite "+site" reads the few ids past the head through the primary key, not the site's whole index.
        of_site = text("+site = :site").bindparams(site=self.site) if self.dialect == "sqlite" else None
        query = select(func.count()).select_from(ConsentRecord).where(ConsentRecord.id > (through or 0))
        query = query.where(of_site if of_site is not None else ConsentRecord.site == self.site)
        if self.since is not None:
            query = query.where(ConsentRecord.recorded_at >= self.since)
        if self.until is not None:
            query = query.where(ConsentRecord.recorded_at < self.until)
        return int(self.session.scalar(query) or 0)

    def proof(self, fmt: str) -> Iterator[bytes]:
        """The detached proof of these records exported as ``fmt``."""
        return proof_chunks(self.session, self.range, fmt)

    def _where(self) -> tuple[str, list[Any]]:
        mark = "%s" if self.dialect == "postgresql" else "?"
        # "+site" makes SQLite read the id range through the primary key instead of the site's index.
        plus = "+" if self.dialect == "sqlite" else ""
        return f"{plus}site = {mark} AND id >= {mark} AND id <= {mark}", [
            self.site,
            self.range.first_id,
            self.range.last_id,
        ]

    def chunks(self, fmt: str, builder: RecordBuilder | None = None) -> Iterator[tuple[bytes, int]]:
        """The records as (bytes, how many records) chunks, oldest first; ``builder`` writes ISO 27560 records."""
        if self.range.first_id is None or self.range.last_id is None:
            return
        if fmt == "iso27560":
            assert builder is not None, "ISO 27560 records need a RecordBuilder"
            for record in self._records():
                line = json.dumps(builder.record(record), separators=(",", ":"), ensure_ascii=False) + "\n"
                yield line.encode(), 1
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
        assert self.range.first_id is not None and self.range.last_id is not None
        line = sql_csv_line(self.dialect) if fmt == "csv" else sql_json_line(self.dialect)
        query = (
            f"SELECT convert_to(string_agg({line}, '' ORDER BY id), 'UTF8'), count(*) FROM consent_records "
            "WHERE site = %s AND id >= %s AND id <= %s"
        )
        # The snapshot of this transaction, shared with the connections that read the ranges.
        snapshot = self.raw.execute("SELECT pg_export_snapshot()").fetchone()[0]

        def read(raw: psycopg.Connection[Any], low: int, high: int) -> Iterator[tuple[bytes, int]]:
            data, rows = one_row(raw.execute(query, [self.site, low, high], binary=True))
            if rows:
                yield data, rows

        ranges = id_ranges(self.range.first_id, self.range.last_id, SPAN)
        yield from SnapshotStreams(self.conninfo, snapshot, ranges, read)

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
                record["sec_gpc"] = None if record["sec_gpc"] is None else record["sec_gpc"] == "true"
                yield record
        cursor.close()
