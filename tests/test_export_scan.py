"""Verifying a CSV export on every core: the same verdict and findings as the thorough reading, or that reading."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from consent.verify import offline, scan
from consent.verify.scan import GaveUp, csv_fields
from tests.support.export_files import export, post_choices, seal, stored_ids, write_keys
from tests.support.offline import CHANGES, findings, rewrite_csv


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Scan files of any size; the list says, per verification, whether the scan settled it."""
    monkeypatch.setattr(scan, "SMALLEST", 0)
    outcomes: list[bool] = []

    def quick_report(*args: Any) -> Any:
        report = scan.quick_report(*args)
        outcomes.append(report is not None)
        return report

    monkeypatch.setattr(offline, "quick_report", quick_report)
    return outcomes


def verified(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = offline.run(files["csv"], files["proof"], str(files["keys"]))
    return status, capsys.readouterr().out


def thorough(files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """What verify prints when it reads the file the thorough way only."""
    with monkeypatch.context() as patched:
        patched.setattr(scan, "SMALLEST", 1 << 62)
        return verified(files, capsys)[1]


@pytest.fixture
def exported(proof_app: Flask, tmp_path: Path) -> dict[str, Path]:
    post_choices(proof_app)
    seal(proof_app)
    path = tmp_path / "export.csv"
    return {"csv": path, "proof": export(proof_app, path), "keys": write_keys(proof_app, tmp_path / "keys.json")}


def test_an_intact_export_is_settled_by_the_scan(exported, settled, capsys, monkeypatch):
    status, output = verified(exported, capsys)
    assert status == 0, output
    assert "demo: intact; 6 records checked, 6 sealed" in output
    assert settled == [True]
    assert output == thorough(exported, capsys, monkeypatch)


@pytest.mark.parametrize("kind", ["changed", "removed", "reordered", "inserted", "unguarded"])
def test_a_tampered_export_gets_the_findings_of_the_thorough_reading(
    proof_app, exported, settled, capsys, monkeypatch, kind
):
    log = stored_ids(proof_app)
    rewrite_csv(exported["csv"], CHANGES[kind])
    status, output = verified(exported, capsys)
    assert status == 1
    assert settled == [False]
    expected = {"changed": log[0][0], "removed": log[1][0], "reordered": log[1][0], "inserted": 99999}
    kinds = {"unguarded": "changed"}
    assert (kinds.get(kind, kind), expected.get(kind, log[1][0])) in {(k, r) for k, r, _ in findings(output)}
    assert output == thorough(exported, capsys, monkeypatch)


CANNOT_VOUCH: list[Callable[[list[str]], list[str]]] = [
    lambda lines: [lines[0].replace("a comma", "a\r\ncomma", 1), *lines[1:]],  # a value over two lines
    lambda lines: [lines[0], "", *lines[1:]],  # a blank line
    lambda lines: [lines[0].replace(",", ',x"y,', 1), *lines[1:]],  # a stray quote
    lambda lines: [lines[0] + "\n" + lines[1], *lines[2:]],  # a bare line feed
    lambda lines: [*lines[:-1], "0" + lines[-1][lines[-1].index(",") :]],  # id zero
]


@pytest.mark.parametrize("change", CANNOT_VOUCH, ids=["two lines", "blank", "stray quote", "line feed", "id zero"])
def test_lines_the_scan_cannot_vouch_for_are_read_the_thorough_way(exported, settled, capsys, monkeypatch, change):
    rewrite_csv(exported["csv"], change)
    _, output = verified(exported, capsys)
    assert settled == [False]
    assert output == thorough(exported, capsys, monkeypatch)


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
                fields, inner = csv_fields(line, line.split('"'))
            except GaveUp:
                continue
            assert fields == _csv_module(line) == next(csv.reader([line])), line
            assert inner == any('"' in field for field in fields), line
