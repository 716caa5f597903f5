"""``consent verify``: check the live log against its signed heads, or an exported file against its proof.

Exits 0 when intact; otherwise 1, naming every changed, removed, inserted,
reordered, unsealed or backdated record by record id and consent ID, and
every head, seal or erasure that does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from sqlalchemy import func, select

from consent.ledger import events, heads
from consent.ledger import seals as stored_seals
from consent.ledger.keys import public_keys
from consent.store.database import driver_connection
from consent.store.models import ConsentRecord, db
from consent.timestamps import iso, utcnow
from consent.verify import offline
from consent.verify.checker import Block, Finding, Report, Verifier
from consent.verify.live import SqliteLog, postgresql_records
from consent.verify.proofs import TreeCheck, check_tree, erasures, good_heads
from consent.verify.report import print_report

NAMED = 20  # unsealed records named one by one; the rest are counted


def witnessed_heads(paths: tuple[Path, ...]) -> list[dict[str, Any]]:
    """The heads in witness stores (JSON Lines), receipts' proofs or head files; ClickException if unreadable."""
    found: list[dict[str, Any]] = []
    for path in paths:
        try:
            text = path.read_text()
            documents = (
                [json.loads(line) for line in text.splitlines() if line.strip()]
                if "\n{" in text
                else [json.loads(text)]
            )
        except (OSError, ValueError) as error:
            raise click.ClickException(f"{path}: not a head, a proof or a witness store ({error})") from None
        for document in documents:
            head = document.get("head", document) if isinstance(document, dict) else None
            if isinstance(head, dict) and head.get("type") == "consent/tree-head/v1":
                found.append(head)
            elif isinstance(document, dict) and document.get("kind") == "keys":
                continue  # a witness store's pinned keys
            else:
                raise click.ClickException(f"{path}: holds something that is not a signed tree head")
    return found


def verify_live(site: str, witnessed: list[dict[str, Any]] | None = None) -> Report:
    """Check ``site``'s stored records against its stored ledger and signed heads, all read in one snapshot."""
    postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:
        raw = driver_connection()
        if not raw.in_transaction:
            raw.execute("BEGIN")  # one read transaction: one snapshot (WAL)
    log = SqliteLog(site) if not postgresql else None
    records: Generator[Block, None, None] | None = None
    try:
        keys = public_keys()
        outcome = TreeCheck(site)
        signed = good_heads(outcome, heads.heads(site), keys, "head")
        seen = good_heads(outcome, witnessed or [], keys, "witnessed head")
        erased = erasures(outcome, events.erasures(site), keys)
        seals = stored_seals.seals(site)
        grace = float(current_app.config["SEAL_GRACE"])
        for _ in check_tree(
            outcome,
            (stored_seals.with_leaves(seal) for seal in seals),
            signed,
            seen,
            backdated_after=max(60.0, 2 * grace),
        ):
            pass
        for seal in seals:
            seal.leaves = seal.labels = b""  # read again, with their records
        verifier = Verifier(
            site, [(seal, outcome.trusted.get(seal.seq, False)) for seal in seals], erased,
            load=log.load if log else stored_seals.with_leaves,
        )  # fmt: skip
        ranges = [(seal.after_id, seal.last_id) for seal in seals]
        records = log.records(ranges) if log else postgresql_records(site, ranges)
        report = verifier.run(records)
        report.findings[:0] = outcome.findings
        report.head = outcome.newest
        _check_sealing(site, report, seals[-1].last_id if seals else 0, bool(signed))
        return report
    finally:
        if records is not None:
            records.close()  # its threads stop before the transaction ends
        db.session.rollback()


def max_seal_delay() -> float:
    """Seconds a record may wait to be sealed before verify names it: ``CONSENT_SEAL_MAX_DELAY``.

    By default a minute more than the seal interval and grace; an hour when
    sealing on the write path is off (``consent seal`` from cron).
    """
    config = current_app.config
    if config.get("SEAL_MAX_DELAY") is not None:
        return float(config["SEAL_MAX_DELAY"])
    interval = float(config["SEAL_INTERVAL"] or 0)
    return interval + float(config["SEAL_GRACE"]) + 60 if interval > 0 else 3600.0


def _check_sealing(site: str, report: Report, through: int, has_heads: bool) -> None:
    """Records must not wait to be sealed longer than the seal interval and grace allow, nor live without heads."""
    due = utcnow() - timedelta(seconds=max_seal_delay())
    late = db.session.execute(
        select(ConsentRecord.id, ConsentRecord.consent_id, ConsentRecord.recorded_at)
        .where(ConsentRecord.site == site, ConsentRecord.id > through, ConsentRecord.recorded_at < due)
        .order_by(ConsentRecord.id)
        .limit(NAMED + 1)
    ).all()
    for row in late[:NAMED]:
        report.findings.append(
            Finding("unsealed", row.id, row.consent_id, f"recorded at {iso(row.recorded_at)} and still not sealed")
        )
    if len(late) > NAMED:
        more = db.session.scalar(
            select(func.count()).where(
                ConsentRecord.site == site, ConsentRecord.id > through, ConsentRecord.recorded_at < due
            )
        )
        report.findings.append(Finding("unsealed", None, None, f"{(more or 0) - NAMED} more records are not sealed"))
    if not has_heads and (report.checked or report.erased or report.purged):
        report.findings.append(Finding("ledger", None, None, "the site has records but no signed tree head"))


@click.command("verify")
@click.option("--site", "site_key", help="The site's key (the live log).")
@click.option(
    "--witness", "witness", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A witness store, a receipt's proof or a head seen outside the database (repeatable).",
)  # fmt: skip
@click.option(
    "--proof", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The proof of the exported FILE (a bundle carries its own).",
)  # fmt: skip
@click.option("--keys", help="The trusted key set for FILE's proof: a JSON file or an http(s) URL.")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify_command(
    site_key: str | None, witness: tuple[Path, ...], proof: Path | None, keys: str | None, file: Path | None
) -> None:
    """Check the log against its signed heads, or an exported FILE offline; exit 1 if anything changed."""
    if file is not None:
        # Exactly `python -m consent.verify`: offline, with the public keys alone.
        status = offline.run(file, proof, keys)
        if status:
            raise SystemExit(status)
        return
    if not site_key:
        raise click.UsageError("give --site for the live log, or a FILE")
    report = verify_live(site_key, witnessed_heads(witness))
    print_report(report)
    if not report.intact:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    """Register ``consent verify``."""
    app.cli.add_command(verify_command)
