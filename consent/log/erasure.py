"""Erasure: ``consent forget`` deletes one visitor's records and signs an erasure event in the ledger.

The records' leaves stay in the Merkle tree (every head keeps verifying); the
signed erasure names their positions, so verification accepts exactly those
absences. The consent fingerprints and labels beside the leaves are blanked.
"""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import delete

from consent.inventory.sites import sites
from consent.ledger import events, seals
from consent.ledger.leaves import subject
from consent.log.history import records_of
from consent.log.stats import invalidate_rollups
from consent.store.models import ConsentEventKey, ConsentRecord, db


def forget(site: str, consent_id: str) -> int:
    """Erase one visitor's records, signing which leaves lost their records; how many were erased."""
    seals.lock_site(site, wait=True)
    rows = records_of(site, consent_id)
    if not rows:
        db.session.rollback()
        return 0
    erased = {row.id for row in rows}
    db.session.execute(delete(ConsentRecord).where(ConsentRecord.id.in_(erased)))
    # A partitioned log's idempotency keys go too, so that a late replay is recorded as on any log.
    db.session.execute(
        delete(ConsentEventKey).where(
            ConsentEventKey.site == site, ConsentEventKey.event_id.in_([row.event_id for row in rows])
        )
    )
    positions = events.blank_leaves(site, erased)
    # Records not sealed yet leave no leaf: nothing outside the database ever saw them.
    events.sign_erasure(site, "forget", positions, len(rows), subject=subject(consent_id).hex())
    invalidate_rollups(site, {row.recorded_at.date() for row in rows})
    db.session.commit()
    return len(rows)


@click.command("forget")
@click.option("--site", "site_key", required=True, help="The site's key.")
@click.argument("consent_id")
def forget_command(site_key: str, consent_id: str) -> None:
    """Erase a visitor's records, leaving a signed erasure that verify accepts."""
    if site_key not in sites():
        raise click.BadParameter(f"unknown site {site_key!r}", param_hint="--site")
    count = forget(site_key, consent_id)
    if not count:
        before = events.count_erased(site_key, subject(consent_id))
        if before:
            click.echo(f"{site_key}: consent ID {consent_id} was erased before ({before} records); nothing left")
            return
        raise click.ClickException(f"no records for consent ID {consent_id} on site {site_key!r}")
    click.echo(f"{site_key}: erased {count} records of consent ID {consent_id}; signed as an erasure in the ledger")


def init_app(app: Flask) -> None:
    """Register ``consent forget``."""
    app.cli.add_command(forget_command)
