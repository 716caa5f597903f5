"""Exports of regional records: the columns, offline verification, and the changes a tamperer makes to them."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from consent.export.formats import COLUMNS, LEGACY_COLUMNS
from consent.verify import offline, scan
from tests.support.dpv_records import problems
from tests.support.export_files import export, insert_records, plain_record, seal, stored_ids, write_keys
from tests.support.offline import findings, rewrite_csv, verify
from tests.support.regions import regional_inventory

CA = {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "CA"}
NY = {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "NY"}
DE = {"CloudFront-Viewer-Country": "DE"}


@pytest.fixture
def regional_proof_app(make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
    """The regional demo site behind CloudFront, sealing only when asked."""
    return make_app(
        INVENTORY=str(regional_inventory(tmp_path)),
        REGION_HEADER="cloudfront",
        SEAL_INTERVAL=0,
        SEAL_GRACE=0,
        PUBLIC_URL="http://localhost",
    )


def record_mix(app: Flask) -> None:
    """A record from before regions, then regional ones: opt-out with Sec-GPC, notice, opt-in, unknown region."""
    insert_records(app, [plain_record(0)])
    client = app.test_client()
    for number, (headers, action) in enumerate(
        [({**CA, "Sec-GPC": "1"}, "opt_out"), (NY, "accept_all"), (DE, "reject_all"), ({}, "custom")]
    ):
        body = {
            "event_id": f"00000000-0000-4000-8000-00000000000{number}",
            "action": action,
            "choices": {"functional": True, "analytics": False, "advertising": False} if action == "custom" else {},
            "revision": 1,
            "language": "en",
            "page_url": "https://shop.example/",
            "gpc": action == "opt_out",
        }
        response = client.post(
            "/api/v1/sites/demo/consents",
            data=json.dumps(body),
            headers={"Origin": "http://localhost:8000", **headers},
            content_type="text/plain",
        )
        assert response.status_code == 201, response.json
    seal(app)


@pytest.fixture
def exported(regional_proof_app: Flask, tmp_path: Path) -> dict[str, Path]:
    record_mix(regional_proof_app)
    path = tmp_path / "export.csv"
    return {
        "csv": path,
        "proof": export(regional_proof_app, path),
        "keys": write_keys(regional_proof_app, tmp_path / "keys.json"),
    }


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def test_the_csv_carries_regime_region_and_sec_gpc(exported: dict[str, Path]) -> None:
    found = rows(exported["csv"])
    assert list(found[0]) == list(COLUMNS)
    assert [(row["action"], row["regime"], row["region"], row["sec_gpc"], row["gpc"]) for row in found] == [
        ("custom", "", "", "", "false"),  # recorded before regions
        ("opt_out", "opt-out", "US-CA", "true", "true"),
        ("accept_all", "notice", "US-NY", "false", "false"),
        ("reject_all", "opt-in", "DE", "false", "false"),
        ("custom", "opt-in", "", "false", "false"),
    ]
    # An opt-out refuses advertising and leaves the rest running.
    assert (found[1]["functional"], found[1]["analytics"], found[1]["advertising"]) == ("true", "true", "false")


def test_json_lines_carry_them_with_nulls(regional_proof_app: Flask, tmp_path: Path) -> None:
    record_mix(regional_proof_app)
    path = tmp_path / "export.jsonl"
    export(regional_proof_app, path, "jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["regime"], r["region"], r["sec_gpc"]) for r in records] == [
        (None, None, None),
        ("opt-out", "US-CA", True),
        ("notice", "US-NY", False),
        ("opt-in", "DE", False),
        ("opt-in", None, False),
    ]
    assert list(records[0]) == list(COLUMNS)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "iso27560"])
def test_an_export_with_regional_records_verifies_offline(regional_proof_app: Flask, tmp_path: Path, fmt: str) -> None:
    record_mix(regional_proof_app)
    path = tmp_path / f"export.{fmt}"
    proof = export(regional_proof_app, path, fmt)
    keys = write_keys(regional_proof_app, tmp_path / "keys.json")
    result = verify(path, "--proof", proof, "--keys", keys)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo: intact; 5 records checked, 5 sealed" in result.stdout


def _cell(lines: list[str], index: int, column: str, value: str) -> list[str]:
    """``lines`` with one CSV cell of record line ``index`` changed."""
    parsed = next(csv.reader([lines[index]]))
    assert parsed[COLUMNS.index(column)] != value
    parsed[COLUMNS.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(parsed)
    return [*lines[:index], out.getvalue(), *lines[index + 1 :]]


@pytest.mark.parametrize(
    ("index", "column", "value"),
    [
        (1, "region", "US-NY"),  # a California visitor said to be from New York
        (1, "region", "US"),
        (1, "regime", "opt-in"),
        (2, "regime", "opt-out"),
        (3, "region", ""),  # the region dropped
        (4, "region", "DE"),  # an unknown region filled in
        (1, "sec_gpc", "false"),
        (3, "sec_gpc", ""),
        (0, "regime", "opt-in"),  # a record from before regions given a regime
        (0, "sec_gpc", "false"),
    ],
)
def test_a_changed_regime_or_region_is_named(
    regional_proof_app: Flask, exported: dict[str, Path], index: int, column: str, value: str
) -> None:
    log = stored_ids(regional_proof_app)
    rewrite_csv(exported["csv"], lambda lines: _cell(lines, index, column, value))
    result = verify(exported["csv"], "--proof", exported["proof"], "--keys", exported["keys"])
    assert result.returncode == 1, result.stdout
    assert findings(result.stdout) == {("changed", *log[index])}, result.stdout


def test_a_spreadsheets_true_and_false_still_verify(exported: dict[str, Path]) -> None:
    rewrite_csv(
        exported["csv"],
        lambda lines: [line.replace(",true,", ",TRUE,").replace(",false,", ",FALSE,") for line in lines],
    )
    result = verify(exported["csv"], "--proof", exported["proof"], "--keys", exported["keys"])
    assert result.returncode == 0, result.stdout


def test_an_export_written_before_regions_still_verifies(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    """The columns of an older release: without regime, region and sec_gpc, as its records were."""
    app = make_app(SEAL_INTERVAL=0, SEAL_GRACE=0, PUBLIC_URL="http://localhost")
    insert_records(app, [plain_record(number) for number in range(4)])
    seal(app)
    path = tmp_path / "export.csv"
    proof = export(app, path)
    table = rows(path)
    legacy = io.StringIO()
    writer = csv.writer(legacy, lineterminator="\r\n")
    writer.writerow(LEGACY_COLUMNS)
    for row in table:
        assert (row["regime"], row["region"], row["sec_gpc"]) == ("", "", "")
        writer.writerow([row[name] for name in LEGACY_COLUMNS])
    path.write_bytes(b"\xef\xbb\xbf" + legacy.getvalue().encode())
    keys = write_keys(app, tmp_path / "keys.json")
    result = verify(path, "--proof", proof, "--keys", keys)
    assert result.returncode == 0, result.stdout + result.stderr
    # And a change in it is still found.
    rewrite_csv(path, lambda lines: [lines[0].replace(",true,", ",false,", 1), *lines[1:]])
    assert verify(path, "--proof", proof, "--keys", keys).returncode == 1


def test_the_parallel_scan_settles_regional_records(
    exported: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The quick reading of big files hashes regional lines itself, to the same verdict."""
    monkeypatch.setattr(scan, "SMALLEST", 0)
    settled: list[bool] = []

    def quick_report(*args: Any) -> Any:
        report = scan.quick_report(*args)
        settled.append(report is not None)
        return report

    monkeypatch.setattr(offline, "quick_report", quick_report)
    status = offline.run(exported["csv"], exported["proof"], str(exported["keys"]))
    assert status == 0, capsys.readouterr().out
    assert settled == [True]
    # The pairs it builds are the thorough reading's, line for line.
    data = exported["csv"].read_bytes()
    start = data.index(b"\r\n") + 2
    pieces = scan.scan_piece(str(exported["csv"]), start, len(data))
    assert pieces is not None and len(pieces) == 5 * 24


def test_iso_27560_records_carry_them(regional_proof_app: Flask, tmp_path: Path) -> None:
    record_mix(regional_proof_app)
    path = tmp_path / "export.iso27560"
    export(regional_proof_app, path, "iso27560")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    own = [
        (r["consent:record"]["regime"], r["consent:record"]["region"], r["consent:record"]["sec_gpc"]) for r in records
    ]
    assert own == [
        (None, None, None),
        ("opt-out", "US-CA", True),
        ("notice", "US-NY", False),
        ("opt-in", "DE", False),
        ("opt-in", None, False),
    ]
    for record in records:
        assert problems(record) == []
    # The visitor's region is a jurisdiction of the record, besides the site's own.
    assert records[1]["dpv:hasJurisdiction"] == ["loc:EU", "loc:US-CA"]
    assert records[3]["dpv:hasJurisdiction"] == ["loc:EU", "loc:DE"]
    assert records[0]["dpv:hasJurisdiction"] == records[4]["dpv:hasJurisdiction"] == ["loc:EU"]


def test_an_iso_27560_record_whose_region_copies_disagree_is_named(regional_proof_app: Flask, tmp_path: Path) -> None:
    record_mix(regional_proof_app)
    path = tmp_path / "export.iso27560"
    proof = export(regional_proof_app, path, "iso27560")
    keys = write_keys(regional_proof_app, tmp_path / "keys.json")
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[1])
    assert record["dpv:hasJurisdiction"] == ["loc:EU", "loc:US-CA"]
    record["dpv:hasJurisdiction"] = ["loc:EU", "loc:US-NY"]
    path.write_text("".join([lines[0], json.dumps(record) + "\n", *lines[2:]]))
    result = verify(path, "--proof", proof, "--keys", keys)
    assert result.returncode == 1
    record_id = record["consent:record"]["record_id"]
    assert re.search(rf"^changed +record {record_id} .*line 2 is not a well-formed record$", result.stdout, re.M)
    assert ("removed", record_id, record["dpv:hasDataSubject"]["dct:identifier"]) in findings(result.stdout)
