"""Retention: ``consent purge``, signed as an erasure event in the ledger (one visitor's: see consent.log.erasure).

A purge deletes the records older than the site's ``retention_days`` and signs
which tree positions lost their records. Their leaves stay in the tree, so
every head keeps verifying, and verification accepts exactly those absences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask import Flask
from sqlalchemy import delete, func, select

from consent.inventory.sites import Site, sites
from consent.ledger import events, seals
from consent.log.partitions import drop_partitions_before
from consent.log.stats import invalidate_rollups
from consent.store.models import ConsentEventKey, ConsentRecord, db
from consent.timestamps import iso, to_ms, utcnow

BATCH = 10_000


@dataclass
class PurgeResult:
    site: str
    cutoff: datetime
    records: int
    partitions: int = 0
    signed: bool = False


def purge(site: Site, dry_run: bool = False, now: datetime | None = None) -> PurgeResult:
    """Delete ``site``'s records older than its retention; sign the purge as an erasure event."""
    cutoff = to_ms((now or utcnow()) - timedelta(days=site.retention_days))
    seals.lock_site(site.key, wait=True)
    old = (ConsentRecord.site == site.key, ConsentRecord.recorded_at < cutoff)
    count = int(db.session.scalar(select(func.count()).select_from(ConsentRecord).where(*old)) or 0)
    result = PurgeResult(site.key, cutoff, count)
    if dry_run or count == 0:
        db.session.rollback()
        return result
    ids = set(db.session.scalars(select(ConsentRecord.id).where(*old).execution_options(yield_per=BATCH)))
    positions = events.blank_leaves(site.key, ids)
    result.partitions = drop_partitions_before(site.key, cutoff)
    db.session.execute(delete(ConsentRecord).where(*old))
    # A partitioned log keeps its idempotency keys apart (see ConsentEventKey); they expire with their records.
    db.session.execute(
        delete(ConsentEventKey).where(ConsentEventKey.site == site.key, ConsentEventKey.recorded_at < cutoff)
    )
    events.sign_erasure(site.key, "purge", positions, count, cutoff=iso(cutoff), retention_days=site.retention_days)
    result.signed = True
    invalidate_rollups(site.key)
    db.session.commit()
    return result


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
        line += f"(retention {known[key].retention_days} days)"
        if result.partitions:
            line += f", {result.partitions} partitions dropped"
        if result.signed:
            line += "; signed as an erasure in the ledger"
        click.echo(line)


def init_app(app: Flask) -> None:
    """Register ``consent purge``."""
    app.cli.add_command(purge_command)
