"""Reading a site's stored records for verification, a seal's range at a time, each record's hash checked.

The id space is cut at the seals' boundaries, so that each seal's records
come as one ``Block``: their id-and-digest pairs, which the verifier compares
with the seal's leaves in one go. Only a block that does not match is read
again record by record.

PostgreSQL hashes every record itself (canonical JSON, SHA-256) and joins the
pairs of a range into one value; two connections on the caller's snapshot
share the ranges. SQLite writes each record's canonical JSON and Python
hashes it. Either way a record whose hash does not match is hashed again in
Python, the service's own way, before it is called changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import psycopg

from consent.models import ConsentRecord, db
from consent.recording import HASHED_FIELDS, record_hash
from consent.snapshot_streams import SnapshotStreams, id_ranges
from consent.verification import Block, Row

SPAN = 10_000  # ids per range outside the seals (records not sealed yet)
MAX_ID = 2**63 - 1
BOOLEANS = frozenset(("necessary", "functional", "analytics", "advertising", "gpc", "dnt"))
SQLITE_MOMENT = "substr(recorded_at, 1, 10) || 'T' || substr(recorded_at, 12, 12) || 'Z'"
POSTGRESQL_MOMENT = """to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


def _sql_json_string(column: str) -> str:
    # JSON's escapes for backslash and quote. Control characters stay raw, so a
    # value holding one hashes differently from the service's JSON and is
    # checked again in Python; no other value can pass for one that does.
    return f"""'"' || replace(replace({column}, '\\', '\\\\'), '"', '\\"') || '"'"""


def sql_canonical(dialect: str) -> str:
    """SQL for a record's canonical JSON, the text ``record_hash`` hashes."""
    if dialect == "postgresql":
        parts = [
            f"CASE WHEN {name} THEN 'true' ELSE 'false' END" if name in BOOLEANS
            else "revision::text" if name == "revision"
            else f"""'"' || {POSTGRESQL_MOMENT} || '"'""" if name == "recorded_at"
            else _sql_json_string(name)
            for name in HASHED_FIELDS
        ]  # fmt: skip
        return "'[' || " + " || ',' || ".join(parts) + " || ']'"
    parts = [
        f"json(CASE WHEN {name} THEN 'true' ELSE 'false' END)" if name in BOOLEANS
        else SQLITE_MOMENT if name == "recorded_at"
        else name
        for name in HASHED_FIELDS
    ]  # fmt: skip
    return f"json_array({', '.join(parts)})"


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
        record is not None
        and record_hash({name: getattr(record, name) for name in HASHED_FIELDS}) == record.record_hash
    )


def _bounds(raw: Any, site: str, mark: str) -> tuple[int | None, int | None]:
    query = f"SELECT min(id), max(id) FROM consent_records WHERE site = {mark}"
    first, last = raw.execute(query, (site,)).fetchone()
    return first, last


def postgresql_records(site: str, seals: list[tuple[int, int]]) -> Iterator[Block]:
    """The site's records as blocks, hashed by PostgreSQL on two connections sharing this snapshot."""
    raw = db.session.connection().connection.driver_connection
    first, last = _bounds(raw, site, "%s")
    if first is None or last is None:
        return
    snapshot = raw.execute("SELECT pg_export_snapshot()").fetchone()[0]
    hashed = (
        f"SELECT id, record_hash, consent_id, sha256(convert_to({sql_canonical('postgresql')}, 'UTF8')) AS digest "
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
        count, same, pairs = reader.execute(block, (site, low, high), binary=True).fetchone()
        yield _block(first, last, low, high, count, same, pairs, lambda: rows(low, high))

    conninfo = db.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    yield from SnapshotStreams(conninfo, snapshot, record_ranges(first, last, seals), read)


def sqlite_records(site: str, seals: list[tuple[int, int]]) -> Iterator[Block]:
    """The site's records as blocks; SQLite writes each record's canonical JSON, Python hashes it."""
    raw = db.session.connection().connection.driver_connection
    first, last = _bounds(raw, site, "?")
    if first is None or last is None:
        return
    # "+site": without statistics SQLite would read the site's index and sort the range by id.
    query = f"SELECT id, consent_id, record_hash, CAST({sql_canonical('sqlite')} AS BLOB) FROM consent_records "
    query += "WHERE +site = ? AND id >= ? AND id <= ? ORDER BY id"
    sha256 = hashlib.sha256
    for low, high in record_ranges(first, last, seals):
        found = raw.execute(query, (site, low, high)).fetchall()
        same = [sha256(canonical).hexdigest() == stored for _, _, stored, canonical in found]
        pairs = b""
        if all(same) and found and found[0][0] > 0:  # ids in order: the first is the lowest
            pairs = b"".join([key.to_bytes(8, "big") + bytes.fromhex(stored[:32]) for key, _, stored, _ in found])

        def rows(found: list[Any] = found, same: list[bool] = same) -> Iterator[Row]:
            for (record_id, consent_id, stored, _), ok in zip(found, same, strict=True):
                yield Row(record_id, consent_id, stored, ok or _recheck(record_id))

        yield _block(first, last, low, high, len(found), all(same), pairs, rows)
