"""Reading a site's stored records for verification, a seal's range at a time, each record's hash checked.

The id space is cut at the seals' boundaries, so that each seal's records
come as one ``Block``: their id-and-digest pairs, which the verifier compares
with the seal's leaves in one go. Only a block that does not match is read
again record by record.

PostgreSQL hashes every record itself (0x00 and the canonical JSON, SHA-256) and joins the
pairs of a range into one value; two connections on the caller's snapshot
share the ranges. SQLite writes each record's canonical JSON and Python
hashes it. Either way a record whose hash does not match is hashed again in
Python, the service's own way, before it is called changed.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from functools import partial
from typing import Any

import psycopg

from consent.ledger.canonical import BOOLEAN_FIELDS as BOOLEANS
from consent.ledger.canonical import ENTRY_FIELDS, HASHED_FIELDS, REGIONAL_FIELDS, record_hash
from consent.ledger.leaves import Seal
from consent.ledger.seals import with_leaves
from consent.store.database import driver_connection, one_row
from consent.store.models import ConsentRecord, db
from consent.store.streams import SnapshotStreams, id_ranges
from consent.timestamps import SQL_ISO
from consent.verify.checker import Block, Row

SPAN = 10_000  # ids per range outside the seals (records not sealed yet)
MAX_ID = 2**63 - 1


def _sql_json_string(column: str) -> str:
    # JSON's escapes for backslash and quote. Control characters stay raw, so a
    # value holding one hashes differently from the service's JSON and is
    # checked again in Python; no other value can pass for one that does.
    return f"""'"' || replace(replace({column}, '\\', '\\\\'), '"', '\\"') || '"'"""


# A record carries the regional fields if any of them is set (consent.ledger.canonical).
REGIONAL = " OR ".join(f"{name} IS NOT NULL" for name in REGIONAL_FIELDS)


def sql_canonical(dialect: str) -> str:
    """SQL for a record's canonical JSON, the text ``record_hash`` hashes."""
    if dialect == "postgresql":
        parts = [
            f"CASE WHEN {name} THEN 'true' ELSE 'false' END" if name in BOOLEANS
            else "revision::text" if name == "revision"
            else f"""'"' || {SQL_ISO["postgresql"]} || '"'""" if name == "recorded_at"
            else _sql_json_string(name)
            for name in HASHED_FIELDS
        ]  # fmt: skip
        regional = [
            f"CASE WHEN {name} IS NULL THEN 'null' WHEN {name} THEN 'true' ELSE 'false' END" if name in BOOLEANS
            else f"coalesce({_sql_json_string(name)}, 'null')"
            for name in REGIONAL_FIELDS
        ]  # fmt: skip
        tail = f"CASE WHEN {REGIONAL} THEN ',' || " + " || ',' || ".join(regional) + " ELSE '' END"
        return "'[' || " + " || ',' || ".join(parts) + f" || {tail} || ']'"
    # json('true') is a constant: SQLite works it out once, not once a record.
    parts = [
        f"CASE WHEN {name} THEN json('true') ELSE json('false') END" if name in BOOLEANS
        else SQL_ISO["sqlite"] if name == "recorded_at"
        else name
        for name in HASHED_FIELDS
    ]  # fmt: skip
    regional = [
        f"CASE WHEN {name} IS NULL THEN NULL WHEN {name} THEN json('true') ELSE json('false') END"
        if name in BOOLEANS
        else name
        for name in REGIONAL_FIELDS
    ]
    plain = f"json_array({', '.join(parts)})"
    return f"CASE WHEN {REGIONAL} THEN json_array({', '.join(parts + regional)}) ELSE {plain} END"


def record_ranges(first: int, last: int, seals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[first, last]`` cut so that each seal's ``(after_id, last_id]`` within it is one range, the rest in SPANs."""
    ranges: list[tuple[int, int]] = []
    low = first
    for after, end in seals:
        start, stop = max(after + 1, low), min(end, last)
        if start > stop:
            continue
        ranges.extend(id_ranges(low, start - 1, SPAN))
        ranges.append((start, stop))
        low = stop + 1
    return ranges + id_ranges(low, last, SPAN)


def _block(first: int, last: int, low: int, high: int, *found: Any) -> Block:
    """A block of ``[low, high]``; from the first record on it holds all below too, up to the last all above."""
    return Block(0 if low == first else low, MAX_ID if high == last else high, *found)


def _recheck(record_id: int) -> bool:
    """Hash one stored record again in Python: the last word on whether its content changed."""
    record = db.session.get(ConsentRecord, record_id)
    return (
        record is not None and record_hash({name: getattr(record, name) for name in ENTRY_FIELDS}) == record.record_hash
    )


def _bounds(raw: Any, site: str, mark: str) -> tuple[int | None, int | None]:
    query = f"SELECT min(id), max(id) FROM consent_records WHERE site = {mark}"
    first, last = raw.execute(query, (site,)).fetchone()
    return first, last


def postgresql_records(site: str, seals: list[tuple[int, int]]) -> Generator[Block, None, None]:
    """The site's records as blocks, hashed by PostgreSQL on two connections sharing this snapshot."""
    raw = driver_connection()
    first, last = _bounds(raw, site, "%s")
    if first is None or last is None:
        return
    snapshot = raw.execute("SELECT pg_export_snapshot()").fetchone()[0]
    hashed = (
        "SELECT id, record_hash, consent_id, "
        f"sha256('\\x00'::bytea || convert_to({sql_canonical('postgresql')}, 'UTF8')) AS digest "
        "FROM consent_records WHERE site = %s AND id >= %s AND id <= %s ORDER BY id OFFSET 0"
    )
    # Rows come to string_agg in id order; were they ever not, the pairs would not match and the
    # records would be read one by one (in id order), so the order is never taken on trust.
    block = (
        "SELECT count(*), coalesce(bool_and(encode(digest, 'hex') = record_hash), true), "
        f"coalesce(string_agg(int8send(id) || substr(digest, 1, 16), ''::bytea), ''::bytea) FROM ({hashed}) AS h"
    )
    one_by_one = f"SELECT id, encode(digest, 'hex') = record_hash, record_hash, consent_id FROM ({hashed}) AS h"
    one_by_one += " ORDER BY id"

    def rows(low: int, high: int) -> Iterator[Row]:
        for record_id, same, stored, consent_id in raw.execute(one_by_one, (site, low, high)).fetchall():
            yield Row(record_id, consent_id, stored, same or _recheck(record_id))

    def read(reader: psycopg.Connection[Any], low: int, high: int) -> Iterator[Block]:
        count, same, pairs = one_row(reader.execute(block, (site, low, high), binary=True))
        yield _block(first, last, low, high, count, same, pairs, lambda: rows(low, high))

    conninfo = db.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    yield from SnapshotStreams(conninfo, snapshot, record_ranges(first, last, seals), read)


def _read_ahead(fetch: Callable[[int, int], list[Any]], ranges: list[tuple[int, int]]) -> Iterator[list[Any]]:
    """``fetch(low, high)`` for each range, in order, run on a thread of its own a couple of ranges ahead."""
    found: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work() -> None:
        try:
            for low, high in ranges:
                rows = fetch(low, high)
                while not stop.is_set():
                    try:
                        found.put(rows, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        except Exception as error:  # noqa: BLE001 - raised again by the reading thread
            found.put(error)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        for _ in ranges:
            rows = found.get()
            if isinstance(rows, BaseException):
                raise rows
            yield rows
    finally:
        stop.set()
        worker.join()


class SqliteLog:
    """A site's SQLite log read for verification on its one connection, ahead of the hashing.

    A thread of its own runs the queries a couple of ranges ahead, reading each
    seal's leaves along with its records: sqlite3 lets the GIL go while SQLite
    works, so reading and hashing overlap. Every use of the connection, there
    and here, holds one lock.
    """

    def __init__(self, site: str) -> None:
        self.site = site
        self.raw = driver_connection()
        self.lock = threading.Lock()
        self.leaves: dict[Any, tuple[bytes, bytes]] = {}

    def load(self, seal: Seal) -> Seal:
        """``seal`` with its leaves and labels: read ahead with its records, or now."""
        found = self.leaves.pop(seal.seq, None)
        if found is not None:
            seal.leaves, seal.labels = found
            return seal
        with self.lock:
            return with_leaves(seal)

    def records(self, seals: list[tuple[int, int]]) -> Generator[Block, None, None]:
        """The site's records as blocks; SQLite writes each record's canonical JSON, Python hashes it."""
        with self.lock:
            first, last = _bounds(self.raw, self.site, "?")
        if first is None or last is None:
            return
        ranges = record_ranges(first, last, seals)
        sha256 = hashlib.sha256
        for (low, high), found in zip(ranges, _read_ahead(self._fetch, ranges), strict=True):
            pairs, same = [], bool(found) and found[0][0] > 0  # ids in order: the first is the lowest
            for record_id, stored, canonical in found if same else ():
                digest = sha256(b"\x00" + canonical).digest()
                same = same and digest.hex() == stored
                pairs.append(record_id.to_bytes(8, "big") + digest[:16])
            yield _block(first, last, low, high, len(found), same, b"".join(pairs), partial(self._rows, low, high))

    def _fetch(self, low: int, high: int) -> list[Any]:
        """Each record's id, record_hash and canonical JSON (and the leaves of the seals that end there)."""
        # "+site": without statistics SQLite would read the site's index and sort the range by id.
        query = f"SELECT id, record_hash, CAST({sql_canonical('sqlite')} AS BLOB) FROM consent_records "
        query += "WHERE +site = ? AND id >= ? AND id <= ? ORDER BY id"
        leaves = "SELECT seq, leaves, labels FROM ledger_seals WHERE site = ? AND last_id >= ? AND last_id <= ?"
        with self.lock:
            found = self.raw.execute(query, (self.site, low, high)).fetchall()
            for seq, *stored in self.raw.execute(leaves, (self.site, low, high)):
                self.leaves[seq] = (stored[0], stored[1])
        return list(found)

    def _rows(self, low: int, high: int) -> Iterator[Row]:
        """The range's records one by one, each mismatch hashed again the service's way."""
        query = f"SELECT id, consent_id, record_hash, CAST({sql_canonical('sqlite')} AS BLOB) FROM consent_records "
        query += "WHERE +site = ? AND id >= ? AND id <= ? ORDER BY id"
        with self.lock:
            found = self.raw.execute(query, (self.site, low, high)).fetchall()
        for record_id, consent_id, stored, canonical in found:
            same = hashlib.sha256(b"\x00" + canonical).hexdigest() == stored
            if not same:
                with self.lock:
                    same = _recheck(record_id)
            yield Row(record_id, consent_id, stored, same)
