"""``consent verify``: check the live log, or an exported file, against the signed ledger.

Exits 0 when intact; otherwise 1, naming every changed, removed, inserted or
reordered record by record id and consent ID. The database recomputes each
record's canonical JSON (and, on PostgreSQL, its hash); a record whose hash
does not match is hashed again in Python, the service's own way, before it is
called changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psycopg
from flask import Flask

from consent import chain, ledger
from consent.copy_streams import CopyStreams
from consent.export_reader import ExportFile, ExportFileError
from consent.models import ConsentRecord, db
from consent.recording import HASHED_FIELDS, record_hash
from consent.verification import Finding, Report, Row, Verifier

FETCH = 2_000


def _sql_canonical(dialect: str) -> str:
    """SQL for a record's canonical JSON, the text ``record_hash`` hashes."""
    moment = (
        """to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
        if dialect == "postgresql"
        else "substr(recorded_at, 1, 10) || 'T' || substr(recorded_at, 12, 12) || 'Z'"
    )
    booleans = {"necessary", "functional", "analytics", "advertising", "gpc", "dnt"}
    if dialect == "postgresql":
        parts = [
            f"CASE WHEN {name} THEN 'true' ELSE 'false' END" if name in booleans
            else "revision::text" if name == "revision"
            else f"to_json({moment})::text" if name == "recorded_at"
            else f"to_json({name})::text"
            for name in HASHED_FIELDS
        ]  # fmt: skip
        return "'[' || " + " || ',' || ".join(parts) + " || ']'"
    parts = [
        f"json(CASE WHEN {name} THEN 'true' ELSE 'false' END)" if name in booleans
        else moment if name == "recorded_at"
        else name
        for name in HASHED_FIELDS
    ]  # fmt: skip
    return f"json_array({', '.join(parts)})"


def _recheck(record_id: int) -> bool:
    """Hash one stored record again in Python: the last word on whether its content changed."""
    record = db.session.get(ConsentRecord, record_id)
    return (
        record is not None
        and record_hash({name: getattr(record, name) for name in HASHED_FIELDS}) == record.record_hash
    )


def _postgresql_rows(site: str) -> Iterator[Row]:
    """PostgreSQL hashes every record itself; two connections on this snapshot share the work."""
    raw = db.session.connection().connection.driver_connection
    digest = f"encode(sha256(convert_to({_sql_canonical('postgresql')}, 'UTF8')), 'hex') = record_hash"
    query = f"COPY (SELECT id, {digest}, record_hash, consent_id FROM consent_records "
    query += "WHERE site = %s AND id >= %s AND id <= %s ORDER BY id) TO STDOUT"
    first, last = raw.execute("SELECT min(id), max(id) FROM consent_records WHERE site = %s", (site,)).fetchone()
    if first is None:
        return
    snapshot = raw.execute("SELECT pg_export_snapshot()").fetchone()[0]

    def statement_for(reader: psycopg.Connection[Any], low: int, high: int) -> str:
        return psycopg.ClientCursor(reader).mogrify(query, (site, low, high))

    conninfo = db.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    for chunk, _ in CopyStreams(conninfo, snapshot, first, last, statement_for, FETCH):
        for line in chunk.split(b"\n")[:-1]:  # COPY's text format escapes tabs and newlines in values
            record_id, same, stored, consent_id = line.split(b"\t")
            ok = same == b"t" or _recheck(int(record_id))
            yield Row(int(record_id), consent_id.decode(errors="replace"), stored.decode(errors="replace"), ok)


def _sqlite_rows(site: str) -> Iterator[Row]:
    """SQLite writes each record's canonical JSON; Python hashes it."""
    raw = db.session.connection().connection.driver_connection
    query = f"SELECT id, consent_id, record_hash, CAST({_sql_canonical('sqlite')} AS BLOB) FROM consent_records "
    # "+site": without statistics SQLite would read the site's index and sort every row by id.
    cursor = raw.execute(query + "WHERE +site = ? ORDER BY id", (site,))
    while rows := cursor.fetchmany(FETCH):
        for record_id, consent_id, stored, canonical in rows:
            same = hashlib.sha256(canonical).hexdigest() == stored
            yield Row(record_id, consent_id, stored, same or _recheck(record_id))


def verify_live(site: str) -> Report:
    """Check ``site``'s stored records against its stored ledger, all read in one snapshot."""
    postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:
        raw = db.session.connection().connection.driver_connection
        if not raw.in_transaction:
            raw.execute("BEGIN")  # one read transaction: one snapshot (WAL)
    try:
        verifier = Verifier(site, ledger.ledger_key(), chain.checkpoints(site, leaves=False), load=chain.with_leaves)
        return verifier.run(_postgresql_rows(site) if postgresql else _sqlite_rows(site))
    finally:
        db.session.rollback()


def _moment_ms(value: str | None) -> int | None:
    if value is None:
        return None
    return ledger.epoch_ms(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC))


def verify_file(site: str, path: Path) -> Report:
    """Check an exported file on its own: its rows against the ledger entries it carries."""
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
    verifier = Verifier(
        site, key, exported.checkpoints, partial=True, scope=scope, extra_seals=extra, tail_allowed=False
    )
    report = verifier.run(exported.rows())
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
