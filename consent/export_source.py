"""Reading one site's records and ledger for an export, in one snapshot, as fast as the database allows.

Rows are formatted by the database (see export_formats); only ISO/IEC TS
27560 records are built in Python. PostgreSQL, inside a REPEATABLE READ
transaction, joins the lines of each range of ids into one value
(``string_agg``), read by two connections at once: a client that takes rows
one at a time spends about as much CPU as the server. SQLite is read with
plain ``sqlite3`` cursors and ``fetchmany`` inside one read transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import Any

import psycopg
from sqlalchemy import Connection, Select, and_, func, or_, select
from sqlalchemy.orm import Session, defer

from consent import ledger
from consent.chain import as_checkpoint
from consent.export_formats import (
    COLUMNS,
    data_lines,
    encode_entry,
    iso27560,
    ledger_lines,
    sql_csv_line,
    sql_json_line,
    sql_values,
)
from consent.ledger import Checkpoint
from consent.models import ConsentRecord, LedgerCheckpoint, db
from consent.recording import iso
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
        # This connection is idle while the others read the records: it writes the ledger entries meanwhile.
        self.spool = Spool(self._ledger_lines(fmt))
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
        """The encoded ledger entries that prove the records, then the signed summary of the export."""
        yield from self.spool.lines() if self.spool is not None else self._ledger_lines(fmt)
        summary = {
            "site": self.site,
            "format": fmt,
            "since": iso(self.since) if self.since else None,
            "until": iso(self.until) if self.until else None,
            "exported_at": iso(now),
            "rows": rows,
            **self.proof,
        }
        signature = ledger.export_signer(ledger.ledger_key()).get_signature(ledger.summary_digest(summary).encode())
        yield encode_entry({"export": {**summary, "signature": signature.decode()}}, fmt)

    def _ledger_lines(self, fmt: str) -> Iterator[bytes]:
        """The ledger entries of the export (not its summary, whose parts they leave in ``self.proof``)."""
        # Closed with the export: closing it would end this connection's transaction, whose snapshot
        # the connections reading the records may still be about to take.
        session = self.session = Session(bind=self.connection)
        headers = [as_checkpoint(row, leaves=False) for row in session.scalars(self._relevant_checkpoints())]
        seqs = [checkpoint.header["seq"] for checkpoint in headers]
        for checkpoint, (leaves, labels) in zip(headers, self._leaves(seqs), strict=True):
            signed = Checkpoint(checkpoint.header, checkpoint.signature, leaves, labels)
            yield from ledger_lines(signed, self.scope, fmt)
        newest = select(func.max(LedgerCheckpoint.last_id)).where(LedgerCheckpoint.site == self.site)
        through = int(session.scalar(newest) or 0)
        # The records no checkpoint covers yet, as leaves signed by this export, streamed.
        root, count, last_id = hashlib.sha256(), 0, through
        for batch in self._tail(session, through):
            leaves = b"".join(ledger.pack_leaf(*record) for record in batch)
            root.update(leaves)
            count, last_id = count + len(batch), batch[-1][0]
            yield from data_lines("leaves", "export", leaves, fmt)
            yield from data_lines("labels", "export", b"".join(ledger.label(record[2]) for record in batch), fmt)
        self.proof = {
            "checkpoints": list(seqs),
            "after_id": through,
            "last_id": last_id,
            "leaf_count": count,
            "root": root.hexdigest(),
        }

    def _leaves(self, seqs: list[int]) -> Iterator[tuple[bytes, bytes]]:
        """The leaves and labels of these checkpoints, in order, one at a time (PostgreSQL: in binary)."""
        for start in range(0, len(seqs), 500):
            wanted = seqs[start : start + 500]
            if self.dialect == "postgresql":
                query = "SELECT leaves, labels FROM ledger_checkpoints WHERE site = %s AND seq = ANY(%s) ORDER BY seq"
                cursor = self.raw.cursor(name=f"leaves{start}", binary=True)
                cursor.itersize = 1
                cursor.execute(query, (self.site, wanted))
            else:
                marks = ", ".join("?" * len(wanted))
                query = (
                    f"SELECT leaves, labels FROM ledger_checkpoints WHERE site = ? AND seq IN ({marks}) ORDER BY seq"
                )
                cursor = self.raw.execute(query, (self.site, *wanted))
            for leaves, labels in cursor:
                yield bytes(leaves), bytes(labels)
            cursor.close()

    def _relevant_checkpoints(self) -> Select[tuple[LedgerCheckpoint]]:
        """The seals and erasures that overlap the range, and the newest purge (without their leaves)."""
        overlapping = [LedgerCheckpoint.kind.in_(("seal", "forget"))]
        if self.since is not None:
            overlapping.append(LedgerCheckpoint.last_at >= self.since)
        if self.until is not None:
            overlapping.append(LedgerCheckpoint.first_at < self.until)
        newest_purge = (
            select(func.max(LedgerCheckpoint.seq))
            .where(LedgerCheckpoint.site == self.site, LedgerCheckpoint.kind == "purge")
            .scalar_subquery()
        )
        return (
            select(LedgerCheckpoint)
            .where(LedgerCheckpoint.site == self.site, or_(and_(*overlapping), LedgerCheckpoint.seq == newest_purge))
            .order_by(LedgerCheckpoint.seq)
            .options(defer(LedgerCheckpoint.leaves), defer(LedgerCheckpoint.labels))
        )

    def _tail(self, session: Session, through: int) -> Iterator[list[tuple[int, datetime, str, str]]]:
        """The exported records no checkpoint covers yet, in batches."""
        query = select(ConsentRecord.id, ConsentRecord.recorded_at, ConsentRecord.consent_id, ConsentRecord.record_hash)
        query = query.where(ConsentRecord.site == self.site, ConsentRecord.id > through)
        if self.since is not None:
            query = query.where(ConsentRecord.recorded_at >= self.since)
        if self.until is not None:
            query = query.where(ConsentRecord.recorded_at < self.until)
        result = session.execute(query.order_by(ConsentRecord.id).execution_options(yield_per=FETCH))
        for partition in result.partitions():
            yield [(row.id, row.recorded_at, row.consent_id, row.record_hash) for row in partition]
