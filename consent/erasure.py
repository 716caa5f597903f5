"""Erasure: ``consent forget`` deletes one visitor's records and leaves a signed tombstone.

The tombstone is a ``forget`` checkpoint whose leaves are the erased records'
original fingerprints: verification accepts exactly those absences. The
visitor's consent ID is blanked from the seals' (unsigned) labels, so the
ledger no longer names them; the 8-byte fingerprint in the leaves remains.
"""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import delete, select, update

from consent import chain, ledger
from consent.inventory import sites
from consent.models import ConsentEventKey, ConsentRecord, LedgerCheckpoint, db
from consent.stats import invalidate_rollups


def forget(site: str, consent_id: str) -> tuple[int, int | None]:
    """Erase one visitor's records, leaving a signed tombstone; (records erased, tombstone seq)."""
    chain.lock_site(site, wait=True)
    rows = db.session.execute(
        select(
            ConsentRecord.id,
            ConsentRecord.recorded_at,
            ConsentRecord.consent_id,
            ConsentRecord.record_hash,
            ConsentRecord.event_id,
        )
        .where(ConsentRecord.site == site, ConsentRecord.consent_id == consent_id)
        .order_by(ConsentRecord.id)
    ).all()
    if not rows:
        db.session.rollback()
        return 0, None
    erased = {row.id for row in rows}
    db.session.execute(delete(ConsentRecord).where(ConsentRecord.id.in_(erased)))
    # A partitioned log's idempotency keys go too, so that a late replay is recorded as on any log.
    events = [row.event_id for row in rows]
    db.session.execute(
        delete(ConsentEventKey).where(ConsentEventKey.site == site, ConsentEventKey.event_id.in_(events))
    )
    _blank_labels(site, erased)
    newest = chain.latest(site)
    through = newest.last_id if newest else 0
    leaves = b"".join(ledger.pack_leaf(*row[:4]) for row in rows)
    tombstone = chain.append(
        site,
        "forget",
        newest,
        through,
        through,
        leaves=leaves,
        labels=ledger.NO_LABEL * len(rows),
        detail={"records": len(rows)},
    )
    invalidate_rollups(site, {row.recorded_at.date() for row in rows})
    db.session.commit()
    return len(rows), tombstone.seq


def _blank_labels(site: str, erased: set[int]) -> None:
    """Remove the erased consent ID from the labels beside the seals' leaves (the leaves stay signed)."""
    seals = db.session.scalars(
        select(LedgerCheckpoint).where(
            LedgerCheckpoint.site == site,
            LedgerCheckpoint.kind == "seal",
            LedgerCheckpoint.last_id >= min(erased),
            LedgerCheckpoint.after_id < max(erased),
        )
    ).all()
    for seal in seals:
        labels = bytearray(seal.labels)
        for position, leaf in enumerate(ledger.unpack_leaves(seal.leaves)):
            if leaf[0] in erased:
                labels[position * 16 : position * 16 + 16] = ledger.NO_LABEL
        db.session.execute(update(LedgerCheckpoint).where(LedgerCheckpoint.id == seal.id).values(labels=bytes(labels)))
        db.session.expunge(seal)


def erased_before(site: str, consent_id: str) -> int:
    """How many records of ``consent_id`` earlier erasures removed (their tombstones carry its fingerprint)."""
    fingerprint = ledger.subject(consent_id)
    count = 0
    for leaves in db.session.scalars(
        select(LedgerCheckpoint.leaves).where(LedgerCheckpoint.site == site, LedgerCheckpoint.kind == "forget")
    ):
        count += sum(1 for leaf in ledger.unpack_leaves(leaves) if leaf[2] == fingerprint)
    return count


@click.command("forget")
@click.option("--site", "site_key", required=True, help="The site's key.")
@click.argument("consent_id")
def forget_command(site_key: str, consent_id: str) -> None:
    """Erase a visitor's records, leaving a signed tombstone that verify accepts."""
    if site_key not in sites():
        raise click.BadParameter(f"unknown site {site_key!r}", param_hint="--site")
    count, seq = forget(site_key, consent_id)
    if seq is None:
        before = erased_before(site_key, consent_id)
        if before:
            click.echo(f"{site_key}: consent ID {consent_id} was erased before ({before} records); nothing left")
            return
        raise click.ClickException(f"no records for consent ID {consent_id} on site {site_key!r}")
    click.echo(f"{site_key}: erased {count} records of consent ID {consent_id}; tombstone: checkpoint {seq}")


def init_app(app: Flask) -> None:
    """Register ``consent forget``."""
    app.cli.add_command(forget_command)
