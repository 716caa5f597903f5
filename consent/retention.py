"""Retention: ``consent purge``, recorded as a signed ledger event (erasure: see consent.erasure).

A purge deletes the records older than the site's ``retention_days`` and
appends a ``purge`` checkpoint (cutoff, count, first and last id, root over
the purged leaves); verification then accepts the absence of sealed records
older than the cutoff. Checkpoints whose records are all gone are dropped from
the head of the chain; the purge names the checkpoint the chain now starts at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask import Flask
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import defer

from consent import chain, ledger
from consent.inventory import Site, sites
from consent.models import ConsentEventKey, ConsentRecord, LedgerCheckpoint, db, utcnow
from consent.partitions import drop_partitions_before
from consent.recording import iso
from consent.stats import invalidate_rollups

BATCH = 10_000


@dataclass
class PurgeResult:
    site: str
    cutoff: datetime
    records: int
    checkpoints: int
    partitions: int = 0
    seq: int | None = None


def _droppable(site: str, cutoff: datetime) -> list[LedgerCheckpoint]:
    """The oldest checkpoints that only speak of records older than ``cutoff`` (a prefix of the chain)."""
    prefix = []
    for row in db.session.scalars(_chain(site)):
        old = row.kind == "purge" or (row.last_at is not None and row.last_at < cutoff)
        if not old:
            break
        prefix.append(row)
    if prefix and prefix[-1].seq == chain.latest(site).seq:  # type: ignore[union-attr]
        prefix.pop()  # keep the newest: the chain continues from it
    return prefix


def purge(site: Site, dry_run: bool = False, now: datetime | None = None) -> PurgeResult:
    """Delete ``site``'s records older than its retention; record the purge as a signed event."""
    cutoff = (now or utcnow()) - timedelta(days=site.retention_days)
    cutoff = cutoff.replace(microsecond=cutoff.microsecond // 1000 * 1000)
    chain.lock_site(site.key, wait=True)
    old = (ConsentRecord.site == site.key, ConsentRecord.recorded_at < cutoff)
    count = int(db.session.scalar(select(func.count()).select_from(ConsentRecord).where(*old)) or 0)
    dropped = _droppable(site.key, cutoff)
    result = PurgeResult(site.key, cutoff, count, len(dropped))
    if dry_run or (count == 0 and not dropped):
        db.session.rollback()
        return result
    root, first_id, last_id = hashlib.sha256(), None, None
    query = select(ConsentRecord.id, ConsentRecord.recorded_at, ConsentRecord.consent_id, ConsentRecord.record_hash)
    for row in db.session.execute(query.where(*old).order_by(ConsentRecord.id).execution_options(yield_per=BATCH)):
        root.update(ledger.pack_leaf(*row))
        first_id = row.id if first_id is None else first_id
        last_id = row.id
    previous = _newest_purge(site.key)
    result.partitions = drop_partitions_before(site.key, cutoff)
    db.session.execute(delete(ConsentRecord).where(*old))
    # A partitioned log keeps its idempotency keys apart (see ConsentEventKey); they expire with their records.
    db.session.execute(
        delete(ConsentEventKey).where(ConsentEventKey.site == site.key, ConsentEventKey.recorded_at < cutoff)
    )
    newest = chain.latest(site.key)
    # The chain now starts at the oldest checkpoint kept (or where an earlier purge said it starts).
    start = previous.detail["start"] if previous else {"seq": 1, "previous": ledger.GENESIS}
    if dropped:
        first_kept = db.session.execute(
            select(LedgerCheckpoint.seq, LedgerCheckpoint.previous)
            .where(LedgerCheckpoint.site == site.key, LedgerCheckpoint.seq > dropped[-1].seq)
            .order_by(LedgerCheckpoint.seq)
            .limit(1)
        ).one()
        start = {"seq": first_kept.seq, "previous": first_kept.previous}
    for row in dropped:
        db.session.delete(row)
    db.session.flush()
    # Sealed records older than any purge's cutoff may be absent; a later, shorter retention keeps that so.
    absent_before = max(ledger.epoch_ms(cutoff), previous.detail["absent_before_ms"] if previous else 0)
    detail = {
        "cutoff": iso(cutoff),
        "retention_days": site.retention_days,
        "absent_before_ms": absent_before,
        "purged": count,
        "first_id": first_id,
        "last_id": last_id,
        "dropped_checkpoints": len(dropped),
        "start": start,
    }
    through = newest.last_id if newest else 0
    purged = chain.append(
        site.key, "purge", newest, through, through, root=root.hexdigest(), leaf_count=count, detail=detail
    )
    result.seq = purged.seq
    invalidate_rollups(site.key)
    db.session.commit()
    return result


def _chain(site: str) -> Select[tuple[LedgerCheckpoint]]:
    """The site's checkpoints, oldest first, headers only."""
    return (
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.site == site)
        .order_by(LedgerCheckpoint.seq)
        .options(defer(LedgerCheckpoint.leaves), defer(LedgerCheckpoint.labels))
    )


def _newest_purge(site: str) -> LedgerCheckpoint | None:
    return db.session.scalars(
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.site == site, LedgerCheckpoint.kind == "purge")
        .order_by(LedgerCheckpoint.seq.desc())
        .limit(1)
    ).first()


@click.command("purge")
@click.option("--site", "site_keys", multiple=True, help="Only this site (repeatable); default: every site.")
@click.option("--dry-run", is_flag=True, help="Only count what would be purged.")
def purge_command(site_keys: tuple[str, ...], dry_run: bool) -> None:
    """Delete records older than each site's retention_days, as a signed ledger event."""
    known = sites()
    for key in site_keys or tuple(known):
        if key not in known:
            raise click.BadParameter(f"unknown site {key!r}", param_hint="--site")
        result = purge(known[key], dry_run=dry_run)
        verb = "would purge" if dry_run else "purged"
        line = f"{key}: {verb} {result.records} records recorded before {iso(result.cutoff)} "
        line += f"(retention {known[key].retention_days} days); {result.checkpoints} checkpoints dropped"
        if result.partitions:
            line += f", {result.partitions} partitions dropped"
        if result.seq is not None:
            line += f"; signed as checkpoint {result.seq}"
        click.echo(line)


def init_app(app: Flask) -> None:
    """Register ``consent purge``."""
    app.cli.add_command(purge_command)
