"""The detached proof of an export: which leaves of the site's tree the exported records are, and why to believe it.

An export covers one contiguous run of leaves, ``[first_index, end_index)``,
of the tree under one signed head: from the first leaf recorded at or after
``since`` to the last recorded before ``until``, no further than the head. It
holds every record whose id lies between those leaves' records (so that a
record inserted behind the ledger's back shows up). The proof carries:

- ``head``: the signed tree head the range is proven against;
- ``export``: a signed statement of the site, the time range and the leaf range;
- ``seals``: the seals' leaves within the range (trimmed at its ends) and their labels;
- ``range_proof``: the hashes of the largest subtrees outside the range
  (consent.ledger.tree.range_proof): with the range's leaf hashes they give the head's root;
- ``erasures``: the signed erasures that name leaves in the range;
- ``inventories``: the inventory versions the site has shown, by hash;
- ``keys``: the published key set.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from consent.ledger import tree
from consent.ledger.events import erasures
from consent.ledger.heads import as_json
from consent.ledger.keys import key_set, private_key
from consent.ledger.leaves import LABEL_SIZE, LEAF, Seal, unpack_leaves
from consent.ledger.seals import as_seal
from consent.ledger.signing import EXPORT, sign
from consent.ledger.tiles import StoredTree
from consent.store.database import driver_connection
from consent.store.models import InventoryVersion, LedgerHead, LedgerSeal
from consent.timestamps import epoch_ms, iso, utcnow

PROOF_TYPE = "consent/export-proof/v1"


@dataclass
class ExportRange:
    """The leaves ``[first_index, end_index)`` under ``head``, in ``seals`` (headers only); ids first_id..last_id."""

    site: str
    since: datetime | None
    until: datetime | None
    head: LedgerHead | None
    seals: list[Seal]
    first_index: int = 0
    end_index: int = 0
    first_id: int | None = None
    last_id: int | None = None


def _trim(seal: Seal, start: int, end: int) -> Seal:
    """The part of ``seal`` (leaves read) at tree positions ``[start, end)``."""
    low, high = max(start, seal.first_index) - seal.first_index, min(end, seal.end_index) - seal.first_index
    # Only the ids beside the cut are read: unpacking every leaf of a seal would cost more than the rest.
    after_id = seal.after_id if low == 0 else LEAF.unpack_from(seal.leaves, (low - 1) * LEAF.size)[0]
    last_id = seal.last_id if high == seal.leaf_count else LEAF.unpack_from(seal.leaves, (high - 1) * LEAF.size)[0]
    return Seal(
        seal.site, seal.seq, seal.first_index + low, high - low, after_id, last_id,
        seal.leaves[low * LEAF.size : high * LEAF.size], seal.labels[low * LABEL_SIZE : high * LABEL_SIZE],
    )  # fmt: skip


def _with_leaves(session: Session, seal: Seal) -> Seal:
    """``seal`` with its leaves and labels, read in the export's snapshot."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # In binary: a bytea sent as hex text costs more to decode than all the rest of the read.
        raw = driver_connection(connection)
        query = "SELECT leaves, labels FROM ledger_seals WHERE site = %s AND seq = %s"
        found = raw.execute(query, (seal.site, seal.seq), binary=True).fetchone()
    else:
        found = session.execute(
            select(LedgerSeal.leaves, LedgerSeal.labels).where(LedgerSeal.site == seal.site, LedgerSeal.seq == seal.seq)
        ).one()
    seal.leaves, seal.labels = bytes(found[0]), bytes(found[1])
    return seal


def export_range(
    session: Session, site: str, since: datetime | None, until: datetime | None, tree_size: int | None = None
) -> ExportRange:
    """The leaves an export of ``[since, until)`` covers, under the newest head (or the head at ``tree_size``).

    Only the first and last seal's leaves are read, to find where the range starts and ends.
    """
    query = select(LedgerHead).where(LedgerHead.site == site)
    query = query.where(LedgerHead.tree_size == tree_size) if tree_size is not None else query
    head = session.scalars(query.order_by(LedgerHead.tree_size.desc()).limit(1)).first()
    scope = ExportRange(site, since, until, head, [])
    if head is None:
        return scope
    seals = (
        select(LedgerSeal)
        .where(LedgerSeal.site == site, LedgerSeal.first_index < head.tree_size)
        .options(defer(LedgerSeal.leaves), defer(LedgerSeal.labels))
    )
    if since is not None:
        seals = seals.where(LedgerSeal.last_at >= since)
    if until is not None:
        seals = seals.where(LedgerSeal.first_at < until)
    found = [as_seal(row, leaves=False) for row in session.scalars(seals.order_by(LedgerSeal.seq))]
    for row in list(session.identity_map.values()):
        session.expunge(row)
    if not found:
        scope.first_index = scope.end_index = head.tree_size
        return scope
    low_ms = epoch_ms(since) if since is not None else None
    high_ms = epoch_ms(until) if until is not None else None
    positions = []
    for seal in {id(seal): seal for seal in (found[0], found[-1])}.values():
        _with_leaves(session, seal)
        for position, (_, moment, _, _) in enumerate(unpack_leaves(seal.leaves)):
            inside = (low_ms is None or moment >= low_ms) and (high_ms is None or moment < high_ms)
            if inside and seal.first_index + position < head.tree_size:
                positions.append(seal.first_index + position)
    if not positions:
        scope.first_index = scope.end_index = head.tree_size
        return scope
    scope.first_index, scope.end_index = min(positions), max(positions) + 1
    scope.seals = [seal for seal in found if seal.end_index > scope.first_index and seal.first_index < scope.end_index]
    first, last = _trim(scope.seals[0], scope.first_index, scope.end_index), None
    last = _trim(scope.seals[-1], scope.first_index, scope.end_index)
    scope.first_id, scope.last_id = first.after_id + 1, last.last_id
    return scope


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def proof_chunks(session: Session, scope: ExportRange, fmt: str) -> Iterator[bytes]:
    """The proof of the records of ``scope`` exported as ``fmt``: one JSON document, written a seal at a time."""
    head = scope.head
    size = head.tree_size if head is not None else 0
    start, end = scope.first_index, scope.end_index
    stored = StoredTree(scope.site, session)
    hashes = tree.range_proof(start, end, size, stored.hash_range) if head is not None else []
    statement = {
        "type": EXPORT,
        "site": scope.site,
        "format": fmt,
        "since": iso(scope.since) if scope.since else None,
        "until": iso(scope.until) if scope.until else None,
        "first_index": start,
        "end_index": end,
        "tree_size": size,
        "root_hash": head.root_hash if head is not None else tree.EMPTY_ROOT.hex(),
        "exported_at": iso(utcnow()),
    }
    named = [
        event
        for event in erasures(scope.site, session)
        if any(low < end and high > start for low, high in event.get("leaves", []))
    ]
    versions = session.scalars(
        select(InventoryVersion).where(InventoryVersion.site == scope.site).order_by(InventoryVersion.first_served_at)
    )
    opening = {
        "type": PROOF_TYPE,
        "site": scope.site,
        "head": as_json(head) if head is not None else None,
        "export": sign(private_key(), statement),
        "range_proof": [value.hex() for value in hashes],
        "erasures": named,
        "inventories": [
            {"hash": version.hash, "revision": version.revision, "first_served_at": iso(version.first_served_at)}
            for version in versions
        ],
        "keys": key_set(),
    }
    yield (_dumps(opening)[:-1] + ',"seals":[').encode()
    for number, seal in enumerate(scope.seals):
        piece = _trim(_with_leaves(session, seal), start, end)
        seal.leaves = seal.labels = b""  # one seal's leaves in memory at a time
        # Base64 needs no JSON escaping: the encoded bytes go in as they are, without a round trip through str.
        start_of_seal = (("," if number else "") + _dumps(piece.header())[:-1] + ',"leaves":"').encode()
        yield b"".join(
            (start_of_seal, base64.b64encode(piece.leaves), b'","labels":"', base64.b64encode(piece.labels), b'"}')
        )
    yield b"]}\n"
