"""Offline verification as an auditor runs it, and the changes a tamperer makes to a CSV export."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FINDING = re.compile(r"^(\w+)\s+record (\d+)\s+consent ID (\S+)", re.MULTILINE)


def verify(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m consent.verify`` in a clean environment: no CONSENT_* variable, another directory."""
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "consent.verify", *map(str, args)],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def findings(output: str) -> set[tuple[str, int, str]]:
    return {(kind, int(record_id), consent_id) for kind, record_id, consent_id in FINDING.findall(output)}


def rewrite_csv(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    """Change the record lines of a CSV export, every other byte as written (BOM, header, CRLF)."""
    text = path.read_bytes().decode("utf-8")
    header, _, body = text.partition("\r\n")
    lines = body.split("\r\n")[:-1]  # every record is one line here: no value holds a line break
    path.write_bytes((header + "\r\n" + "".join(line + "\r\n" for line in change(lines))).encode())


def _must_replace(line: str, old: str, new: str) -> str:
    assert old in line, line
    return line.replace(old, new, 1)


CHANGES: dict[str, Callable[[list[str]], list[str]]] = {
    "changed": lambda lines: [lines[0].replace("and a comma", "and no comma", 1), *lines[1:]],
    "flag": lambda lines: [lines[0], lines[1].replace(",true,true,", ",true,false,", 1), *lines[2:]],
    "removed": lambda lines: [lines[0], *lines[2:]],
    "reordered": lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],
    "inserted": lambda lines: [*lines, "99999" + lines[3][lines[3].index(",") :]],
    # A value starting with "'" is written with another in front; without it, it reads back shorter.
    "unguarded": lambda lines: [lines[0], _must_replace(lines[1], "\"''=cmd", "\"'=cmd"), *lines[2:]],
}
