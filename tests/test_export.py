"""The compliance export: formats, ranges, HTTP streaming, files that verify on their own, constant memory."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert
from test_ledger import findings, post_choice, records, run

from consent import sealing
from consent.export_formats import COLUMNS
from consent.models import ConsentRecord, db
from consent.recording import HASHED_FIELDS, record_hash
from consent.snapshot_streams import SnapshotStreams

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
def proof_app(make_app: Any) -> Flask:
    return make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)


def insert_records(app: Flask, moments: list[datetime], **values: Any) -> None:
    """Records at the given moments, written directly (as if recorded then)."""
    with app.app_context():
        for moment in moments:
            row = {
                "site": "demo", "event_id": uuid.uuid4().hex, "consent_id": str(uuid.uuid4()),
                "recorded_at": moment.replace(microsecond=moment.microsecond // 1000 * 1000), "action": "accept_all",
                "necessary": True, "functional": True, "analytics": True, "advertising": True, "revision": 1,
                "inventory_hash": "0" * 64, "language": "en", "page_url": "https://shop.example/", "ip": "192.0.2.0",
                "user_agent": "Mozilla/5.0", "gpc": False, "dnt": False, **values,
            }  # fmt: skip
            row["record_hash"] = record_hash({name: row[name] for name in HASHED_FIELDS})
            db.session.execute(insert(ConsentRecord).values(row))
        db.session.commit()


def export(app: Flask, path: Path, *options: str) -> Any:
    result = run(app, "export", "--site", "demo", "-o", str(path), *options)
    assert result.exit_code == 0, result.output
    return result


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return [row for row in csv.reader(stream) if row and row[0] != "#ledger"]


def verify(app: Flask, path: Path) -> Any:
    return run(app, "verify", "--site", "demo", str(path))


def test_csv_export_opens_cleanly_with_one_column_per_category(proof_app, tmp_path):
    client = proof_app.test_client()
    post_choice(client, action="accept_all", choices={"functional": True, "analytics": True, "advertising": True})
    post_choice(client, user_agent='=HYPERLINK("http://evil.example"), "quoted"')
    run(proof_app, "seal")
    result = export(proof_app, tmp_path / "log.csv")
    raw = (tmp_path / "log.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfrecord_id,consent_id,recorded_at,action,necessary,functional,analytics,")
    header, first, second = csv_rows(tmp_path / "log.csv")
    assert header == list(COLUMNS)
    assert [int(first[0]), int(second[0])] == [record_id for record_id, _ in records(proof_app)]
    values = dict(zip(header, first, strict=True))
    assert values["recorded_at"].endswith("Z") and datetime.fromisoformat(values["recorded_at"][:-1])
    assert [values[c] for c in ("necessary", "functional", "analytics", "advertising")] == ["true"] * 4
    assert values["page_url"] == "https://shop.example/products/42"
    assert values["ip"] == "127.0.0.0" and values["site"] == "demo" and len(values["record_hash"]) == 64
    # A value a spreadsheet would run as a formula is kept as text.
    assert dict(zip(header, second, strict=True))["user_agent"] == '\'=HYPERLINK("http://evil.example"), "quoted"'
    assert "2 records exported" in result.stderr
    assert verify(proof_app, tmp_path / "log.csv").exit_code == 0


def test_jsonl_export_has_one_object_per_record(proof_app, tmp_path):
    client = proof_app.test_client()
    post_choice(client, action="reject_all", choices={}, gpc=True)
    run(proof_app, "seal")
    export(proof_app, tmp_path / "log.jsonl", "--format", "jsonl")
    lines = (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    assert list(record) == list(COLUMNS)
    assert record["action"] == "reject_all" and record["analytics"] is False and record["gpc"] is True
    assert record["necessary"] is True and isinstance(record["record_id"], int)
    assert {next(iter(json.loads(line))) for line in lines[1:]} <= {"checkpoint", "leaves", "labels", "export"}


def test_iso27560_export_shapes_each_record_as_a_consent_record(proof_app, tmp_path):
    client = proof_app.test_client()
    given = post_choice(client, action="custom", choices={"analytics": True})
    post_choice(client, action="withdraw", choices={}, consent_id=given["consent_id"], receipt=given["receipt"])
    run(proof_app, "seal")
    export(proof_app, tmp_path / "log.jsonl", "--format", "iso27560")
    first, second = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()[:2]]
    assert first["record"]["pii_principal_id"] == given["consent_id"]
    assert first["record"]["record_id"] == records(proof_app)[0][0]
    assert first["party_identification"][0] == {
        "party_id": "controller",
        "party_name": "Demo Shop Ltd",
        "party_role": "PII Controller",
    }
    purposes = {p["purpose"]: p["consent_given"] for p in first["pii_processing"]["purposes"]}
    assert purposes == {"necessary": True, "functional": False, "analytics": True, "advertising": False}
    notice = first["pii_processing"]["privacy_notice"]
    assert notice["url"] == "/s/demo/cookies" and len(notice["inventory_hash"]) == 64
    event = first["event"][0]
    assert event["state"] == "given" and event["validity_duration"] == "P180D"
    assert event["event_time"] == given["recorded_at"]
    assert second["event"][0]["state"] == "withdrawn"
    assert verify(proof_app, tmp_path / "log.jsonl").exit_code == 0


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "'"])
def test_values_a_spreadsheet_would_run_are_kept_as_text_and_still_verify(proof_app, tmp_path, start):
    post_choice(proof_app.test_client(), user_agent=f"{start}cmd|' /C calc'!A0", event_id=f"-{uuid.uuid4().hex}")
    export(proof_app, tmp_path / "log.csv")
    (_, row) = csv_rows(tmp_path / "log.csv")
    values = dict(zip(COLUMNS, row, strict=True))
    assert values["user_agent"] == f"'{start}cmd|' /C calc'!A0"
    assert values["event_id"].startswith("'-")
    assert verify(proof_app, tmp_path / "log.csv").exit_code == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "iso27560"])
def test_an_export_verifies_on_its_own_including_records_not_sealed_yet(proof_app, tmp_path, fmt):
    client = proof_app.test_client()
    for _ in range(3):
        post_choice(client)
    run(proof_app, "seal")
    post_choice(client)  # not sealed yet: the export's signed summary vouches for it
    path = tmp_path / f"log.{fmt}"
    export(proof_app, path, "--format", fmt)
    result = verify(proof_app, path)
    assert result.exit_code == 0, result.output
    assert "demo: intact; 4 records checked, 4 sealed" in result.output


def _rewrite(path: Path, change: Any) -> None:
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    data = [line for line in lines[1:] if not line.startswith("#ledger")]
    trailer = [line for line in lines[1:] if line.startswith("#ledger")]
    path.write_text("\ufeff" + lines[0] + "".join(change(data)) + "".join(trailer), encoding="utf-8")


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("changed", lambda rows: [rows[0].replace(",true,true,false,false,", ",true,true,true,true,", 1), *rows[1:]]),
        ("removed", lambda rows: [rows[0], rows[2], rows[3]]),
        ("reordered", lambda rows: [rows[0], rows[2], rows[1], rows[3]]),
        ("inserted", lambda rows: [*rows, rows[3].replace(rows[3].split(",")[0], "99999", 1)]),
    ],
)
def test_verify_names_rows_tampered_in_an_exported_file(proof_app, tmp_path, kind, change):
    client = proof_app.test_client()
    for _ in range(4):
        post_choice(client)
    run(proof_app, "seal")
    log = records(proof_app)
    path = tmp_path / "log.csv"
    export(proof_app, path)
    _rewrite(path, change)
    result = verify(proof_app, path)
    assert result.exit_code == 1
    named = {(k, record_id) for k, record_id, _ in findings(result.output)}
    expected = {
        "changed": {("changed", log[0][0])},
        "removed": {("removed", log[1][0])},
        "reordered": {("reordered", log[1][0])},
        "inserted": {("inserted", 99999)},
    }[kind]
    assert named == expected
    if kind == "removed":
        assert log[1][1] in result.output  # the removed row's consent ID, from the checkpoint's labels


def test_a_file_with_its_ledger_stripped_or_forged_does_not_verify(proof_app, tmp_path):
    client = proof_app.test_client()
    for _ in range(2):
        post_choice(client)
    run(proof_app, "seal")
    path = tmp_path / "log.jsonl"
    export(proof_app, path, "--format", "jsonl")
    lines = path.read_text().splitlines(keepends=True)
    (tmp_path / "stripped.jsonl").write_text("".join(line for line in lines if '"export"' not in line))
    result = verify(proof_app, tmp_path / "stripped.jsonl")
    assert result.exit_code == 1 and "no signed export summary" in result.output
    forged = [
        line.replace('"leaf_count":2', '"leaf_count":1') if line.startswith('{"checkpoint"') else line for line in lines
    ]
    (tmp_path / "forged.jsonl").write_text("".join(forged))
    result = verify(proof_app, tmp_path / "forged.jsonl")
    assert result.exit_code == 1
    assert "checkpoint 1: its signature does not verify" in result.output


def test_export_of_a_time_range(proof_app, tmp_path):
    insert_records(proof_app, [datetime(2026, 3, day, 12, tzinfo=UTC) for day in (1, 10, 20, 30)])
    run(proof_app, "seal")
    export(proof_app, tmp_path / "march.csv", "--since", "2026-03-05", "--until", "2026-03-25T00:00:00Z")
    rows = csv_rows(tmp_path / "march.csv")[1:]
    assert [row[2] for row in rows] == ["2026-03-10T12:00:00.000Z", "2026-03-20T12:00:00.000Z"]
    result = verify(proof_app, tmp_path / "march.csv")
    assert result.exit_code == 0, result.output
    assert "2 sealed records outside the exported range" in result.output


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-03-05T25:00"])
def test_bad_dates_are_refused_with_the_option_named(proof_app, tmp_path, value):
    result = run(proof_app, "export", "--site", "demo", "--since", value, "-o", str(tmp_path / "x.csv"))
    assert result.exit_code == 2
    assert "--since" in result.output and repr(value) in result.output


def test_http_export_needs_an_admin_token(proof_app):
    client = proof_app.test_client()
    assert client.get("/api/v1/sites/demo/export").status_code == 401
    refused = client.get("/api/v1/sites/demo/export", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert client.get("/api/v1/sites/nowhere/export", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("query", "field"), [("?since=nope", "since"), ("?until=2026-02-30", "until"), ("?format=xml", "format")]
)
def test_http_export_refuses_bad_parameters_with_422(proof_app, query, field):
    response = proof_app.test_client().get(f"/api/v1/sites/demo/export{query}", headers=ADMIN)
    assert response.status_code == 422
    assert list(response.json["error"]["fields"]) == [field]


def test_http_export_streams_a_file_that_verifies(proof_app, tmp_path):
    client = proof_app.test_client()
    for _ in range(3):
        post_choice(client)
    run(proof_app, "seal")
    response = client.get("/api/v1/sites/demo/export?format=csv&since=2020-01-01", headers=ADMIN)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Content-Disposition"] == 'attachment; filename="consent-demo-20200101.csv"'
    assert response.mimetype == "text/csv"
    (tmp_path / "download.csv").write_bytes(response.get_data())
    assert len(csv_rows(tmp_path / "download.csv")) == 4
    result = verify(proof_app, tmp_path / "download.csv")
    assert result.exit_code == 0, result.output


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_memory_stays_flat_during_a_large_export(proof_app, database_url, tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    from proof_data import fill

    fill(database_url, "demo", "0" * 64, 200_000)
    with proof_app.app_context():
        sealing.seal("demo", sealing.read_horizon())
    output = tmp_path / "large.csv"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSENT_DATABASE_URL": database_url,
        "CONSENT_SECRET_KEY": "test-secret-key",
        "CONSENT_ADMIN_TOKENS": "test-admin-token",
        "CONSENT_INVENTORY": str(ROOT / "cookies.yaml"),
    }
    command = [
        sys.executable,
        "-c",
        "from consent.cli import main; main()",
        "export",
        "--site",
        "demo",
        "-o",
        str(output),
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        try:
            samples.append((output.stat().st_size if output.exists() else 0, _rss_kb(process.pid)))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass
        time.sleep(0.02)
    if process.poll() is None:
        process.kill()
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    final = output.stat().st_size
    streaming = [rss for size, rss in samples if size >= final * 0.1]
    assert len(streaming) >= 5, "too few samples while streaming"
    # Memory after the first tenth of the file is what it is at the end: it does not grow with the log.
    assert max(streaming) - min(streaming) < 16 * 1024, (min(streaming), max(streaming))
    assert max(rss for _, rss in samples) < 100 * 1024
    assert b"200000 records exported" in errors
    assert len(csv_rows(output)) == 200_001
    # Read in many ranges (on PostgreSQL by two connections at once), yet complete and in order:
    verified = verify(proof_app, output)
    assert verified.exit_code == 0, verified.output[-2000:]
    assert "200000 records checked, 200000 sealed" in verified.output
    live = run(proof_app, "verify", "--site", "demo")
    assert live.exit_code == 0 and "200000 records checked, 200000 sealed" in live.output, live.output[-2000:]


def test_readers_that_start_late_still_find_the_exports_snapshot(proof_app, tmp_path, monkeypatch):
    """The ledger entries are written meanwhile on the first connection: that must not end its transaction."""
    work = SnapshotStreams._work

    def late(self: SnapshotStreams[Any], stream: int) -> None:
        time.sleep(0.5)  # the ledger entries of a small export are written by then
        work(self, stream)

    monkeypatch.setattr(SnapshotStreams, "_work", late)
    client = proof_app.test_client()
    for _ in range(3):
        post_choice(client)
    run(proof_app, "seal")
    export(proof_app, tmp_path / "log.csv")
    result = verify(proof_app, tmp_path / "log.csv")
    assert result.exit_code == 0 and "3 records checked, 3 sealed" in result.output, result.output
