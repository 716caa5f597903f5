"""The stored seals of a site: reading them, locking the site's ledger, and finding leaves by position."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, defer

from consent.ledger.leaves import LEAF, Seal
from consent.store.database import driver_connection
from consent.store.models import LedgerSeal, db


def lock_site(site: str, wait: bool) -> bool:
    """Take the site's ledger lock for this transaction; False if it is busy and ``wait`` is False.

    PostgreSQL: an advisory lock per site. SQLite: waiting takes the database's
    write lock now (``BEGIN IMMEDIATE``); not waiting takes nothing, and the
    unique ``(site, seq)`` settles a race.
    """
    if db.engine.dialect.name != "postgresql":
        raw = driver_connection()
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


def as_seal(row: LedgerSeal, leaves: bool = True) -> Seal:
    seal = Seal(row.site, row.seq, row.first_index, row.leaf_count, row.after_id, row.last_id)
    if leaves:
        seal.leaves, seal.labels = bytes(row.leaves), bytes(row.labels)
    return seal


def latest(site: str) -> LedgerSeal | None:
    """The site's newest seal (its leaves not read)."""
    return db.session.scalars(
        select(LedgerSeal)
        .where(LedgerSeal.site == site)
        .options(defer(LedgerSeal.leaves), defer(LedgerSeal.labels))
        .order_by(LedgerSeal.seq.desc())
        .limit(1)
    ).first()


def seals(site: str, leaves: bool = False) -> list[Seal]:
    """Every seal of ``site``, oldest first (without leaves and labels unless asked: see ``with_leaves``)."""
    query = select(LedgerSeal).where(LedgerSeal.site == site).order_by(LedgerSeal.seq)
    if not leaves:
        query = query.options(defer(LedgerSeal.leaves), defer(LedgerSeal.labels))
    result = []
    for row in db.session.scalars(query):
        result.append(as_seal(row, leaves))
        db.session.expunge(row)
    return result


def with_leaves(seal: Seal) -> Seal:
    """``seal`` with its stored leaves and labels read in (in the session's transaction)."""
    if seal.leaves or not seal.leaf_count:
        return seal
    if db.engine.dialect.name == "postgresql":
        # In binary: a bytea sent as hex text costs more to decode than all the rest of the read.
        raw = driver_connection()
        query = "SELECT leaves, labels FROM ledger_seals WHERE site = %s AND seq = %s"
        found = raw.execute(query, (seal.site, seal.seq), binary=True).fetchone()
    else:
        found = db.session.execute(
            select(LedgerSeal.leaves, LedgerSeal.labels).where(LedgerSeal.site == seal.site, LedgerSeal.seq == seal.seq)
        ).first()
    if found is not None:
        seal.leaves, seal.labels = bytes(found[0]), bytes(found[1])
    return seal


def sealed_through(site: str) -> int:
    """The highest record id that ``site``'s ledger accounts for."""
    return int(db.session.scalar(select(func.max(LedgerSeal.last_id)).where(LedgerSeal.site == site)) or 0)


def tree_size(site: str) -> int:
    """How many leaves the site's tree holds."""
    newest = latest(site)
    return newest.first_index + newest.leaf_count if newest else 0


def leaves_between(site: str, start: int, end: int, session: Session | None = None) -> bytes:
    """The stored leaves at tree positions ``[start, end)``, in order (read through ``session``, default the app's)."""
    if start >= end:
        return b""
    rows = (
        (session or db.session)
        .execute(
            select(LedgerSeal.first_index, LedgerSeal.leaves)
            .where(
                LedgerSeal.site == site,
                LedgerSeal.first_index < end,
                LedgerSeal.first_index + LedgerSeal.leaf_count > start,
            )
            .order_by(LedgerSeal.first_index)
        )
        .all()
    )
    size = LEAF.size
    return b"".join(bytes(leaves)[max(start - first, 0) * size : (end - first) * size] for first, leaves in rows)


def seal_of(site: str, record_id: int) -> Seal | None:
    """The seal whose id range holds ``record_id`` (with its leaves)."""
    row = db.session.scalars(
        select(LedgerSeal).where(
            LedgerSeal.site == site, LedgerSeal.after_id < record_id, LedgerSeal.last_id >= record_id
        )
    ).first()
    return as_seal(row) if row is not None else None


def position_of(site: str, record_id: int, leaf: str) -> int | None:
    """The tree position of the leaf of record ``record_id`` whose hash is ``leaf``; None if it was never sealed."""
    seal = seal_of(site, record_id)
    if seal is None:
        return None
    wanted = bytes.fromhex(leaf)
    for position, (row_id, _, _, digest) in enumerate(LEAF.iter_unpack(seal.leaves)):
        if row_id == record_id:
            return seal.first_index + position if digest == wanted else None
    return None
