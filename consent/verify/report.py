"""Printing a verification report: one line per finding, then a summary; shared by the live and offline verify.

Plain ``print`` rather than click, so that the offline verifier needs nothing but the standard library and
``cryptography``.
"""

from __future__ import annotations

import sys
from typing import TextIO

from consent.verify.checker import Report


def print_report(report: Report, out: TextIO | None = None) -> None:
    """One line per finding, then a summary line, the notes and the head the records were proven against."""
    stream = out or sys.stdout

    def echo(line: str) -> None:
        print(line, file=stream)

    for finding in sorted(report.findings, key=lambda f: (f.record_id is not None, f.record_id or 0, f.kind)):
        where = f"record {finding.record_id}" if finding.record_id is not None else "ledger"
        who = (
            f"consent ID {finding.consent_id}"
            if finding.consent_id
            else ("consent ID unknown" if finding.record_id else "")
        )
        echo(f"{finding.kind:<10} {where:<16} {who:<48} {finding.message}".rstrip())
    head = report.head
    sealed = f"{report.sealed} sealed under signed heads" if head else "no signed head"
    extra = f"{report.unsealed} not sealed yet, {report.erased} erased, {report.purged} purged"
    if report.unproven:
        extra += f", {report.unproven} under seals no head vouches for"
    verdict = "intact" if report.intact else f"NOT INTACT: {len(report.findings)} problems"
    echo(f"{report.site}: {verdict}; {report.checked} records checked, {sealed}; {extra}")
    for note in report.notes:
        echo(note)
    if head is not None:
        echo(
            f"newest head: {head['tree_size']} leaves, root {head['root_hash']}, "
            f"signed {head['timestamp']} by key {head['key_id']}"
        )
