"""The stored chain of checkpoints: reading it, locking it per site, appending to it and growing its newest seal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import defer

from consent import recording  # a module import: recording calls into sealing, which uses this module
from consent.ledger import GENESIS, HEADER_FIELDS, LEAF, Checkpoint, leaf_span, leaves_root, ledger_key, ledger_signer
from consent.models import LedgerCheckpoint, db, utcnow


def as_checkpoint(row: LedgerCheckpoint, leaves: bool = True) -> Checkpoint:
    """The stored row in its signed form (with or without its leaves and labels)."""
    header = {field: getattr(row, field) for field in HEADER_FIELDS}
    for field in ("first_at", "last_at", "signed_at"):
        header[field] = recording.iso(header[field]) if header[field] is not None else None
    if not leaves:
        return Checkpoint(header, row.signature)
    return Checkpoint(header, row.signature, bytes(row.leaves), bytes(row.labels))


def lock_site(site: str, wait: bool) -> bool:
    """Take the site's ledger lock for this transaction; False if it is busy and ``wait`` is False.

    PostgreSQL: an advisory lock per site. SQLite: waiting takes the database's
    write lock now (``BEGIN IMMEDIATE``); not waiting takes nothing, and the
    unique ``(site, seq)`` settles a race.
    """
    if db.engine.dialect.name != "postgresql":
        raw = db.session.connection().connection.driver_connection
        if wait and not raw.in_transaction:
            raw.execute("BEGIN IMMEDIATE")
        return True
    # Advisory locks are per database: the schema is part of the key, so that
    # deployments sharing one database in separate schemas never block each other.
    key, name = "hashtextextended(current_schema() || :name, 0)", {"name": f"/consent-ledger/{site}"}
    if wait:
        db.session.execute(text(f"SELECT pg_advisory_xact_lock({key})"), name)
        return True
    return bool(db.session.scalar(text(f"SELECT pg_try_advisory_xact_lock({key})"), name))


def latest(site: str) -> LedgerCheckpoint | None:
    """The site's newest checkpoint."""
    return db.session.scalars(
        select(LedgerCheckpoint).where(LedgerCheckpoint.site == site).order_by(LedgerCheckpoint.seq.desc()).limit(1)
    ).first()


def fill_and_sign(row: LedgerCheckpoint) -> None:
    """Set the span, root, signing time and signature of ``row`` from its leaves and header."""
    if row.kind != "purge":
        row.first_at, row.last_at = leaf_span(row.leaves)
        row.root = leaves_root(row.leaves)
        row.leaf_count = len(row.leaves) // LEAF.size
    now = utcnow()
    row.signed_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
    checkpoint = as_checkpoint(row)
    row.signature = ledger_signer(ledger_key()).get_signature(checkpoint.digest.encode()).decode()


def append(
    site: str, kind: str, previous: LedgerCheckpoint | None, after_id: int, last_id: int, **values: Any
) -> LedgerCheckpoint:
    """Add the checkpoint that follows ``previous`` to the session (the caller commits).

    Its seq is the one after ``previous``: if someone appended first, the
    unique ``(site, seq)`` refuses this one, so decisions made on a stale
    ``previous`` are never written.
    """
    row = LedgerCheckpoint(
        site=site,
        seq=previous.seq + 1 if previous else 1,
        kind=kind,
        after_id=after_id,
        last_id=last_id,
        previous=as_checkpoint(previous, leaves=False).digest if previous else GENESIS,
        leaves=values.pop("leaves", b""),
        labels=values.pop("labels", b""),
        detail=values.pop("detail", {}),
        root=values.pop("root", ""),
        leaf_count=values.pop("leaf_count", 0),
        **values,
    )
    fill_and_sign(row)
    db.session.add(row)
    db.session.flush()
    return row


GROWING_FIELDS = ("last_id", "leaf_count", "first_at", "last_at", "root", "signed_at", "leaves", "labels", "signature")


def grown(row: LedgerCheckpoint, last_id: int, leaves: bytes, labels: bytes) -> dict[str, Any]:
    """The new values of ``row`` with ``leaves`` appended up to ``last_id``, signed anew (``row`` untouched)."""
    copy = LedgerCheckpoint(**{field: getattr(row, field) for field in (*HEADER_FIELDS, "labels", "leaves")})
    copy.last_id, copy.leaves, copy.labels = last_id, bytes(row.leaves) + leaves, bytes(row.labels) + labels
    fill_and_sign(copy)
    return {field: getattr(copy, field) for field in GROWING_FIELDS}


def checkpoints(site: str, leaves: bool = True) -> list[Checkpoint]:
    """Every stored checkpoint of ``site``, oldest first (without leaves and labels: see ``with_leaves``)."""
    query = select(LedgerCheckpoint).where(LedgerCheckpoint.site == site).order_by(LedgerCheckpoint.seq)
    if not leaves:
        query = query.options(defer(LedgerCheckpoint.leaves), defer(LedgerCheckpoint.labels))
    result = []
    for row in db.session.scalars(query):
        result.append(as_checkpoint(row, leaves))
        db.session.expunge(row)
    return result


def with_leaves(checkpoint: Checkpoint) -> Checkpoint:
    """``checkpoint`` with its stored leaves and labels read in."""
    if checkpoint.leaves or not checkpoint.header["leaf_count"]:
        return checkpoint
    found = db.session.execute(
        select(LedgerCheckpoint.leaves, LedgerCheckpoint.labels).where(
            LedgerCheckpoint.site == checkpoint.header["site"], LedgerCheckpoint.seq == checkpoint.header["seq"]
        )
    ).first()
    if found is None:
        return checkpoint
    return Checkpoint(checkpoint.header, checkpoint.signature, bytes(found.leaves), bytes(found.labels))


def sealed_through(site: str) -> int:
    """The highest record id that ``site``'s ledger accounts for."""
    return int(db.session.scalar(select(func.max(LedgerCheckpoint.last_id)).where(LedgerCheckpoint.site == site)) or 0)
