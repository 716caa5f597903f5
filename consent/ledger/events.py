"""Signed erasures: a purge or a ``forget`` removes records, and says which leaves, signed, in the log.

The statement ``{"type": "consent/erasure/v1", "site", "kind", "at",
"tree_size", "leaves", "records"}`` lists the tree positions whose records
were removed as ``[start, end)`` ranges. The leaves themselves never change:
their hashes stay in the tree, so every head keeps verifying, and a removed
record's leaf stays provable while its data is gone. The consent fingerprints
and labels beside those leaves are blanked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from consent.ledger.keys import private_key
from consent.ledger.leaves import LABEL_SIZE, LEAF, NO_LABEL, NO_SUBJECT
from consent.ledger.seals import tree_size
from consent.ledger.signing import ERASURE, sign
from consent.store.models import LedgerEvent, LedgerSeal, db
from consent.timestamps import iso, to_ms, utcnow


def as_ranges(positions: Iterable[int]) -> list[list[int]]:
    """Sorted positions as ``[start, end)`` ranges."""
    ranges: list[list[int]] = []
    for position in sorted(positions):
        if ranges and ranges[-1][1] == position:
            ranges[-1][1] += 1
        elif not ranges or ranges[-1][1] < position:
            ranges.append([position, position + 1])
    return ranges


def blank_leaves(site: str, record_ids: set[int]) -> list[int]:
    """Blank the consent fingerprints and labels of these records' leaves; their tree positions."""
    if not record_ids:
        return []
    positions: list[int] = []
    rows = db.session.execute(
        select(LedgerSeal.id, LedgerSeal.first_index, LedgerSeal.leaves, LedgerSeal.labels).where(
            LedgerSeal.site == site,
            LedgerSeal.last_id >= min(record_ids),
            LedgerSeal.after_id < max(record_ids),
        )
    ).all()
    size = LEAF.size
    for row in rows:
        leaves, labels, touched = bytearray(row.leaves), bytearray(row.labels), False
        for position, (record_id, *_) in enumerate(LEAF.iter_unpack(row.leaves)):
            if record_id in record_ids:
                positions.append(row.first_index + position)
                leaves[position * size + 16 : position * size + 24] = NO_SUBJECT
                labels[position * LABEL_SIZE : (position + 1) * LABEL_SIZE] = NO_LABEL
                touched = True
        if touched:
            db.session.execute(
                update(LedgerSeal).where(LedgerSeal.id == row.id).values(leaves=bytes(leaves), labels=bytes(labels))
            )
    return positions


def sign_erasure(site: str, kind: str, positions: list[int], records: int, **detail: Any) -> dict[str, Any]:
    """Sign and store the erasure of the records at ``positions`` (the caller commits)."""
    now = to_ms(utcnow())
    statement = {
        "type": ERASURE,
        "site": site,
        "kind": kind,
        "at": iso(now),
        "tree_size": tree_size(site),
        "leaves": as_ranges(positions),
        "records": records,
        **detail,
    }
    signed = sign(private_key(), statement)
    db.session.add(LedgerEvent(site=site, kind=kind, at=now, signed=json.dumps(signed, separators=(",", ":"))))
    return signed


def erasures(site: str, session: Session | None = None) -> list[dict[str, Any]]:
    """Every signed erasure of ``site``, oldest first (read through ``session``, default the app's)."""
    texts = (session or db.session).scalars(
        select(LedgerEvent.signed).where(LedgerEvent.site == site).order_by(LedgerEvent.id)
    )
    return [json.loads(text) for text in texts]


def count_erased(site: str, consent_id_leaf_subject: bytes) -> int:
    """How many records earlier erasures of one visitor removed (``forget`` statements count their records)."""
    total = 0
    for signed in erasures(site):
        if signed.get("kind") == "forget" and signed.get("subject") == consent_id_leaf_subject.hex():
            total += int(signed.get("records", 0))
    return total
