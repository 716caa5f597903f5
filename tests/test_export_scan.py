"""Verifying a CSV export on every core: the same verdict and findings as the thorough reading, or that reading."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from test_export import export, verify
from test_ledger import findings, post_choice, records, run

from consent import export_scan
from consent import verify as verify_command
from consent.export_scan import GaveUp, _fields


@pytest.fixture
def proof_app(make_app: Any) -> Flask:
    return make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Scan files of any size; the list says, per verification, whether the scan settled it."""
    monkeypatch.setattr(export_scan, "SMALLEST", 0)
    outcomes: list[bool] = []

    def quick_report(*args: Any) -> Any:
        report = export_scan.quick_report(*args)
        outcomes.append(report is not None)
        return report

    monkeypatch.setattr(verify_command, "quick_report", quick_report)
    return outcomes


def thorough(app: Flask, path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What verify prints when it reads the file the thorough way only."""
    with monkeypatch.context() as patched:
        patched.setattr(export_scan, "SMALLEST", 1 << 62)
        return str(verify(app, path).output)


def rewrite(path: Path, change: Any) -> None:
    """Change the records of an export, keeping every other byte as it was written (BOM, CRLF, the trailer)."""
    lines = path.read_bytes().decode("utf-8-sig").splitlines(keepends=True)
    rows = [line for line in lines[1:] if not line.startswith("#ledger")]
    trailer = [line for line in lines[1:] if line.startswith("#ledger")]
    path.write_bytes(("\ufeff" + lines[0] + "".join(change(rows)) + "".join(trailer)).encode())


def log_with_a_tail(app: Flask, third: str = "Tab\there") -> None:
    client = app.test_client()
    post_choice(client, user_agent='Mozilla/5.0 (X11; Linux x86_64) "quoted", and a comma')
    post_choice(client, user_agent="'=cmd|' /C calc'!A0")
    post_choice(client, user_agent=third)
    post_choice(client)
    run(app, "seal")
    post_choice(client)  # not sealed yet: the export's own summary vouches for it


@pytest.mark.parametrize("third", ["Tab\there", "back\\slash"])
def test_an_intact_export_is_settled_by_the_scan(proof_app, tmp_path, settled, monkeypatch, third):
    log_with_a_tail(proof_app, third)
    path = tmp_path / "log.csv"
    export(proof_app, path)
    result = verify(proof_app, path)
    assert result.exit_code == 0, result.output
    assert "demo: intact; 5 records checked, 5 sealed" in result.output
    assert settled == [True]
    assert result.output == thorough(proof_app, path, monkeypatch)


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("changed", lambda rows: [rows[0].replace("quoted", "unquoted", 1), *rows[1:]]),
        ("removed", lambda rows: [rows[0], *rows[2:]]),
        ("reordered", lambda rows: [rows[0], rows[2], rows[1], *rows[3:]]),
        ("inserted", lambda rows: [*rows, rows[3].replace(rows[3].split(",")[0], "99999", 1)]),
        # A value starting with "'" is written with another in front; without it, it reads back shorter.
        ("unguarded", lambda rows: [rows[0], rows[1].replace("\"''=cmd", "\"'=cmd", 1), *rows[2:]]),
    ],
)
def test_a_tampered_export_gets_the_findings_of_the_thorough_reading(
    proof_app, tmp_path, settled, monkeypatch, kind, change
):
    log_with_a_tail(proof_app)
    log = records(proof_app)
    path = tmp_path / "log.csv"
    export(proof_app, path)
    rewrite(path, change)
    result = verify(proof_app, path)
    assert result.exit_code == 1
    assert settled == [False]
    named = {(k, record_id) for k, record_id, _ in findings(result.output)}
    expected = {"changed": log[0][0], "removed": log[1][0], "reordered": log[1][0], "inserted": 99999}.get(kind)
    assert (kind, expected) in named if kind != "unguarded" else ("changed", log[1][0]) in named
    assert result.output == thorough(proof_app, path, monkeypatch)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda rows: [rows[0].replace("a comma", "a\r\ncomma", 1), *rows[1:]], id="value over two lines"),
        pytest.param(lambda rows: [rows[0], "\r\n", *rows[1:]], id="blank line"),
        pytest.param(lambda rows: [rows[0].replace(",", ',x"y,', 1), *rows[1:]], id="stray quote"),
        pytest.param(lambda rows: [rows[0].replace("\r\n", "\n"), *rows[1:]], id="bare line feed"),
        pytest.param(lambda rows: [*rows[:-1], rows[-1].replace(rows[-1].split(",")[0], "0", 1)], id="id zero"),
    ],
)
def test_lines_the_scan_cannot_vouch_for_are_read_the_thorough_way(proof_app, tmp_path, settled, monkeypatch, change):
    log_with_a_tail(proof_app)
    path = tmp_path / "log.csv"
    export(proof_app, path)
    rewrite(path, change)
    result = verify(proof_app, path)
    assert settled == [False]
    assert result.output == thorough(proof_app, path, monkeypatch)


def test_a_jsonl_export_is_read_the_thorough_way(proof_app, tmp_path, settled):
    log_with_a_tail(proof_app)
    path = tmp_path / "log.jsonl"
    export(proof_app, path, "--format", "jsonl")
    result = verify(proof_app, path)
    assert result.exit_code == 0 and "5 records checked, 5 sealed" in result.output
    assert settled == [False]


def _csv_module(line: str) -> list[str] | None:
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def test_a_line_is_split_as_the_csv_module_splits_it():
    """Every line of up to six characters from an alphabet of the characters that matter."""
    for length in range(7):
        for characters in itertools.product("a,\"' ", repeat=length):
            line = "".join(characters)
            try:
                fields, inner = _fields(line, line.split('"'))
            except GaveUp:
                continue
            assert fields == _csv_module(line) == next(csv.reader([line])), line
            assert inner == any('"' in field for field in fields), line
