"""Sealing: the newest records join their site's Merkle tree within seconds, under a new signed head.

Every worker runs the same cheap timer after each recorded choice; when it is
due, that worker seals and the others find nothing left to do (PostgreSQL: a
try-lock per site; SQLite: one writer at a time and a unique ``(site, seq)``).
Nothing on the write path waits for a lock.

On PostgreSQL, ids come from a sequence and can commit out of order: id 7 may
be visible while id 6 is still being inserted. So the sealer first *observes*
the highest visible id H and seals up to H only ``CONSENT_SEAL_GRACE`` seconds
later: every id below H was taken before H was, by an insert that commits
within the grace period. SQLite gives out ids in commit order, so there the
observed H is final at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click
from flask import Flask, current_app
from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from consent.inventory.sites import sites
from consent.ledger import heads, seals, tiles
from consent.ledger.leaves import label, pack_leaf
from consent.ledger.tiles import StoredTree
from consent.store.models import ConsentRecord, LedgerHead, LedgerSeal, db
from consent.timestamps import utcnow

MAX_LEAVES = 10_000


def read_horizon() -> int:
    """The highest record id visible now, all sites together."""
    return int(db.session.scalar(select(func.max(ConsentRecord.id))) or 0)


def _of_site(site: str) -> ColumnElement[bool]:
    """``site = :site``, written so that a range of ids is read through the primary key.

    SQLite, without statistics, would otherwise pick the site's index and read
    every record of the site to find the newest few ("+" disqualifies it).
    """
    if db.engine.dialect.name == "sqlite":
        return text("+site = :site").bindparams(site=site)  # type: ignore[return-value]
    return ConsentRecord.site == site


def _hash_bytes(record_hash: str) -> bytes:
    """A stored record_hash as the leaf hash; one that is not 32 bytes of hex (tampered) seals as zeros."""
    try:
        value = bytes.fromhex(record_hash)
    except ValueError:
        return bytes(32)
    return value if len(value) == 32 else bytes(32)


def _seal_once(site: str, horizon: int) -> tuple[int, bool, LedgerHead | None] | None:
    """Seal the next batch of ``site``'s records up to ``horizon``: (leaves added, whether more remain, new head).

    None when another sealer holds the site or sealed first.
    """
    if not seals.lock_site(site, wait=False):
        return None
    last = seals.latest(site)
    through = last.last_id if last else 0
    size = last.first_index + last.leaf_count if last else 0
    rows = (
        []
        if horizon <= through
        else db.session.execute(
            select(ConsentRecord.id, ConsentRecord.recorded_at, ConsentRecord.consent_id, ConsentRecord.record_hash)
            .where(_of_site(site), ConsentRecord.id > through, ConsentRecord.id <= horizon)
            .order_by(ConsentRecord.id)
            .limit(MAX_LEAVES)
        ).all()
    )
    if not rows:
        if size and heads.at_size(site, size) is None:  # a pass cut short left its seals without a head
            return 0, False, heads.sign_head(site, size, StoredTree(site).root(size))
        return 0, False, None
    more = len(rows) == MAX_LEAVES
    hashes = [_hash_bytes(row.record_hash) for row in rows]
    now = utcnow()
    db.session.add(
        LedgerSeal(
            site=site,
            seq=last.seq + 1 if last else 1,
            first_index=size,
            leaf_count=len(rows),
            after_id=through,
            # A seal claims every record up to its last_id: up to the horizon, or its last row when it is full.
            last_id=rows[-1].id if more else horizon,
            first_at=min(row.recorded_at for row in rows),
            last_at=max(row.recorded_at for row in rows),
            sealed_at=now,
            leaves=b"".join(
                pack_leaf(row.id, row.recorded_at, row.consent_id, digest)
                for row, digest in zip(rows, hashes, strict=True)
            ),
            labels=b"".join(label(row.consent_id) for row in rows),
        )
    )
    db.session.flush()  # the unique (site, seq) refuses a second sealer here, before any other write
    tiles.append(site, size, hashes)
    # One head a pass, once the backlog is sealed: a record sealed after a head was committed after it.
    grown = size + len(rows)
    return len(rows), more, None if more else heads.sign_head(site, grown, StoredTree(site).root(grown))


def seal(site: str, horizon: int) -> int:
    """Seal ``site``'s records with ids up to ``horizon`` (all final); return how many were sealed."""
    total = 0
    while True:
        try:
            outcome = _seal_once(site, horizon)
        except IntegrityError:
            outcome = None  # another sealer appended the same seq first
        except OperationalError as error:
            if "locked" not in str(error):  # SQLite: another writer committed since this one read
                raise
            outcome = None
        if outcome is None:
            db.session.rollback()
            return total
        db.session.commit()
        count, more, head = outcome
        if head is not None:
            heads.remember(head)
        total += count
        if not more:
            return total


class Sealer:
    """The per-process timer on the write path: observe the horizon, then seal it a grace period later."""

    def __init__(self, interval: float, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.grace, self.clock = interval, min(grace, interval), clock
        self.due: dict[str, float] = {}
        self.observed: dict[str, int] = {}

    def tick(self, site: str) -> None:
        """Called after every recorded choice; does something only when due."""
        now = self.clock()
        if now < self.due.get(site, 0.0):
            return
        if db.engine.dialect.name != "postgresql":
            self.due[site] = now + self.interval
            seal(site, read_horizon())
        elif site not in self.observed:
            self.observed[site] = read_horizon()
            db.session.commit()
            self.due[site] = now + self.grace
        else:
            self.due[site] = now + self.interval - self.grace
            seal(site, self.observed.pop(site))


def after_record(site: str) -> None:
    """Seal when due, by whichever worker gets there first; never fails the request that called it."""
    sealer: Sealer | None = current_app.extensions.get("consent.sealer")
    if sealer is None:
        return
    try:
        sealer.tick(site)
    except DBAPIError:
        # The database went away after the commit; no traceback for an outage.
        db.session.rollback()
        current_app.logger.warning("sealing %s failed: database unavailable; retrying later", site)
    except Exception:  # noqa: BLE001 - the choice is committed; sealing retries on the next tick
        db.session.rollback()
        current_app.logger.warning("sealing %s failed; retrying later", site, exc_info=True)


@click.command("seal")
@click.option("--site", "site_keys", multiple=True, help="Only this site (repeatable); default: every site.")
def seal_command(site_keys: tuple[str, ...]) -> None:
    """Seal every record written so far into the Merkle tree, under a new signed head."""
    horizon = read_horizon()
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        time.sleep(float(current_app.config["SEAL_GRACE"]))
    for key in site_keys or tuple(sites()):
        count = seal(key, horizon)
        click.echo(f"{key}: sealed {count} records; the ledger accounts for ids up to {seals.sealed_through(key)}")


def init_app(app: Flask) -> None:
    """Configure sealing (``CONSENT_SEAL_INTERVAL`` 0 turns it off on the write path) and its command."""
    interval = float(app.config["SEAL_INTERVAL"])
    if interval > 0:
        app.extensions["consent.sealer"] = Sealer(interval, float(app.config["SEAL_GRACE"]))
    app.cli.add_command(seal_command)
