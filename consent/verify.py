"""``consent verify``: check the live log, or an exported file, against the signed ledger.

Exits 0 when intact; otherwise 1, naming every changed, removed, inserted or
reordered record by record id and consent ID (see verification, live_records
and export_reader).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import click
from flask import Flask

from consent import chain, ledger
from consent.export_reader import ExportFile, ExportFileError
from consent.export_scan import CsvScan, quick_report
from consent.live_records import SqliteLog, postgresql_records
from consent.models import db
from consent.verification import Block, Finding, Report, Verifier


def verify_live(site: str) -> Report:
    """Check ``site``'s stored records against its stored ledger, all read in one snapshot."""
    postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:
        raw = db.session.connection().connection.driver_connection
        if not raw.in_transaction:
            raw.execute("BEGIN")  # one read transaction: one snapshot (WAL)
    log = SqliteLog(site) if not postgresql else None
    records: Generator[Block, None, None] | None = None
    try:
        checkpoints = chain.checkpoints(site, leaves=False)
        verifier = Verifier(site, ledger.ledger_key(), checkpoints, load=log.load if log else chain.with_leaves)
        seals = [(seal.header["after_id"], seal.header["last_id"]) for seal, _ in verifier.seals]
        records = log.records(seals) if log else postgresql_records(site, seals)
        return verifier.run(records)
    finally:
        if records is not None:
            records.close()  # its threads stop before the transaction ends
        db.session.rollback()


def _moment_ms(value: str | None) -> int | None:
    return ledger.iso_ms(value) if value is not None else None


def verify_file(site: str, path: Path) -> Report:
    """Check an exported file on its own: its rows against the ledger entries it carries."""
    with CsvScan(path) as scan:  # a large CSV file's records are checked on every core meanwhile
        exported = ExportFile(path)
        key = ledger.ledger_key()
        summary, tail = exported.summary, exported.tail
        problems: list[Finding] = []
        extra = []
        if summary is None or tail is None:
            problems.append(Finding("checkpoint", None, None, "the file has no signed export summary (truncated?)"))
            scope: tuple[int | None, int | None] = (None, None)
        else:
            signed = ledger.export_signer(key).verify_signature(
                ledger.summary_digest(summary).encode(), summary["signature"].encode()
            )
            if not signed or ledger.leaves_root(tail.leaves) != summary["root"]:
                problems.append(Finding("checkpoint", None, None, "the export summary's signature does not verify"))
            else:
                extra.append(tail)
            if summary["site"] != site:
                problems.append(Finding("checkpoint", None, None, f"the file holds site {summary['site']!r}"))
            present = {checkpoint.header["seq"] for checkpoint in exported.checkpoints}
            for seq in summary["checkpoints"]:
                if seq not in present:
                    problems.append(Finding("checkpoint", None, None, f"checkpoint {seq} is missing from the file"))
            scope = (_moment_ms(summary["since"]), _moment_ms(summary["until"]))

        def verifier() -> Verifier:
            return Verifier(
                site, key, exported.checkpoints, partial=True, scope=scope, extra_seals=extra, tail_allowed=False
            )

        report = quick_report(verifier(), scan.pairs()) or verifier().run(exported.rows())
    report.findings[:0] = problems + exported.problems
    return report


def print_report(report: Report) -> None:
    """One line per finding, then a summary line."""
    for finding in sorted(report.findings, key=lambda f: (f.record_id is not None, f.record_id or 0, f.kind)):
        where = f"record {finding.record_id}" if finding.record_id is not None else "ledger"
        who = (
            f"consent ID {finding.consent_id}"
            if finding.consent_id
            else ("consent ID unknown" if finding.record_id else "")
        )
        click.echo(f"{finding.kind:<10} {where:<16} {who:<48} {finding.message}".rstrip())
    head = report.head
    sealed = f"{report.sealed} sealed in checkpoints up to {head.header['seq']}" if head else "no checkpoints"
    extra = f"{report.unsealed} not sealed yet, {report.erased} erased, {report.purged} purged"
    if report.unproven:
        extra += f", {report.unproven} under a checkpoint that does not verify"
    if report.outside:
        extra += f", {report.outside} sealed records outside the exported range"
    verdict = "intact" if report.intact else f"NOT INTACT: {len(report.findings)} problems"
    click.echo(f"{report.site}: {verdict}; {report.checked} records checked, {sealed}; {extra}")
    if head is not None:
        click.echo(
            f"newest checkpoint: seq {head.header['seq']}, {head.header['leaf_count']} leaves, digest {head.digest}"
        )


@click.command("verify")
@click.option("--site", "site_key", required=True, help="The site's key.")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify_command(site_key: str, file: Path | None) -> None:
    """Check the log, or an exported FILE, against the signed ledger; exit 1 if anything changed."""
    try:
        report = verify_file(site_key, file) if file is not None else verify_live(site_key)
    except ExportFileError as error:
        raise click.ClickException(str(error)) from None
    print_report(report)
    if not report.intact:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    """Register ``consent verify``."""
    app.cli.add_command(verify_command)
