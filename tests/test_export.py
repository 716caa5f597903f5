"""The compliance export: plain tables, the records of one signed head, ranges, guards, streaming, constant memory."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from consent.export.formats import COLUMNS
from consent.store.models import ConsentRecord, db
from consent.store.streams import SnapshotStreams
from tests.support.consent_log import insert_records, post_choice, run

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": "Bearer test-admin-token"}
ORIGIN = "http://localhost:8000"


def record_ids(app: Flask) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(ConsentRecord.id).order_by(ConsentRecord.id)))


def seal(app: Flask) -> None:
    result = run(app, "seal")
    assert result.exit_code == 0, result.output


def export(app: Flask, path: Path, *options: str) -> Result:
    result = run(app, "export", "--site", "demo", "-o", str(path), *options)
    assert result.exit_code == 0, result.output
    return result


def csv_rows(data: bytes) -> list[list[str]]:
    """Every row of a CSV export, header included, as the csv module reads it."""
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_export_is_a_plain_table_with_one_column_per_category(proof_app, tmp_path):
    client = proof_app.test_client()
    post_choice(client, action="accept_all", choices={"functional": True, "analytics": True, "advertising": True})
    post_choice(client, user_agent='=HYPERLINK("http://evil.example"), "quoted"')
    seal(proof_app)
    result = export(proof_app, tmp_path / "log.csv")
    raw = (tmp_path / "log.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfrecord_id,consent_id,recorded_at,action,necessary,functional,analytics,")
    rows = csv_rows(raw)
    assert len(rows) == 3 and all(len(row) == len(COLUMNS) for row in rows)
    header, first, second = rows
    assert header == list(COLUMNS) and "event_id" not in header
    assert [int(first[0]), int(second[0])] == record_ids(proof_app)
    values = dict(zip(header, first, strict=True))
    assert values["recorded_at"].endswith("Z") and datetime.fromisoformat(values["recorded_at"][:-1])
    assert [values[c] for c in ("necessary", "functional", "analytics", "advertising")] == ["true"] * 4
    assert values["page_url"] == "https://shop.example/products/42"
    assert values["ip"] == "127.0.0.0" and values["site"] == "demo" and len(values["record_hash"]) == 64
    # A value a spreadsheet would run as a formula is kept as text.
    assert dict(zip(header, second, strict=True))["user_agent"] == '\'=HYPERLINK("http://evil.example"), "quoted"'
    assert "2 records exported" in result.stderr
    assert b"#ledger" not in raw and raw.endswith(b"\r\n")


def test_jsonl_export_has_one_object_per_record_and_nothing_else(proof_app, tmp_path):
    client = proof_app.test_client()
    post_choice(client, action="reject_all", choices={}, gpc=True)
    post_choice(client)
    seal(proof_app)
    export(proof_app, tmp_path / "log.jsonl", "--format", "jsonl")
    lines = (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    documents = [json.loads(line) for line in lines]
    assert all(list(document) == list(COLUMNS) for document in documents)
    record = documents[0]
    assert record["action"] == "reject_all" and record["analytics"] is False and record["gpc"] is True
    assert record["necessary"] is True and isinstance(record["record_id"], int)
    assert [document["record_id"] for document in documents] == record_ids(proof_app)


def test_iso27560_export_writes_one_dpv_consent_record_per_line(proof_app, tmp_path):
    client = proof_app.test_client()
    given = post_choice(client, action="custom", choices={"analytics": True})
    post_choice(client, action="withdraw", choices={}, consent_id=given["consent_id"], receipt=given["receipt"])
    seal(proof_app)
    export(proof_app, tmp_path / "log.jsonl", "--format", "iso27560")
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first, second = [json.loads(line) for line in lines]
    assert first["@type"] == "dpv:ConsentRecord"
    assert first["dct:conformsTo"] == "https://w3id.org/dpv/schema/dpv-27560#record"
    assert first["dpv:hasDataSubject"]["dct:identifier"] == given["consent_id"]
    assert first["consent:record"]["record_id"] == record_ids(proof_app)[0]
    assert isinstance(first["dct:identifier"], str) and first["dct:created"] == given["recorded_at"]
    (controller,) = [e for e in first["dpv:hasEntity"] if "dpv:DataController" in e["@type"]]
    assert controller["dpv:hasName"] == "Demo Shop Ltd" and first["dct:creator"] == controller["@id"]
    assert controller["schema:contactPoint"][0]["schema:email"] == "privacy@shop.example"
    statuses = {p["dct:identifier"]: p.get("dpv:hasConsentStatus") for p in first["dpv:hasProcess"]}
    assert statuses["necessary"] is None
    assert {key: value[0]["@type"] for key, value in statuses.items() if value} == {
        "functional": ["dpv:ConsentRefused"],
        "analytics": ["dpv:ConsentGiven"],
        "advertising": ["dpv:ConsentRefused"],
    }
    (notice,) = first["dpv:hasNotice"]
    assert notice["schema:url"] == "http://localhost/s/demo/cookies" and len(notice["dct:identifier"]) == 64
    status = statuses["analytics"][0]
    assert status["dpv:hasDuration"]["rdf:value"] == "P180D" and status["dpv:isIndicatedAtTime"] == given["recorded_at"]
    withdrawn = [p["dpv:hasConsentStatus"][0]["@type"] for p in second["dpv:hasProcess"] if "dpv:hasConsentStatus" in p]
    assert withdrawn == [["dpv:ConsentWithdrawn"]] * 3


def test_iso27560_export_from_the_command_needs_the_services_address(make_app, tmp_path):
    app = make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)
    post_choice(app.test_client())
    seal(app)
    result = run(app, "export", "--site", "demo", "--format", "iso27560", "-o", str(tmp_path / "log.jsonl"))
    assert result.exit_code == 2 and "CONSENT_PUBLIC_URL" in result.output
    assert not (tmp_path / "log.jsonl").exists() or (tmp_path / "log.jsonl").read_bytes() == b""


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "'"])
def test_values_a_spreadsheet_would_run_are_kept_as_text(proof_app, tmp_path, start):
    post_choice(proof_app.test_client(), user_agent=f"{start}cmd|' /C calc'!A0")
    seal(proof_app)
    export(proof_app, tmp_path / "log.csv")
    (_, row) = csv_rows((tmp_path / "log.csv").read_bytes())
    assert dict(zip(COLUMNS, row, strict=True))["user_agent"] == f"'{start}cmd|' /C calc'!A0"


def test_records_newer_than_the_newest_head_are_left_out_and_counted(proof_app, tmp_path):
    client = proof_app.test_client()
    for _ in range(3):
        post_choice(client)
    seal(proof_app)
    post_choice(client)
    post_choice(client)
    result = export(proof_app, tmp_path / "log.csv")
    assert len(csv_rows((tmp_path / "log.csv").read_bytes())) == 1 + 3
    assert "2 records newer than the signed head of 3 leaves are left out; `consent seal` seals them" in result.stderr
    seal(proof_app)
    result = export(proof_app, tmp_path / "log.csv")
    assert len(csv_rows((tmp_path / "log.csv").read_bytes())) == 1 + 5
    assert "left out" not in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "iso27560"])
def test_an_export_before_any_head_is_empty_and_says_why(proof_app, tmp_path, fmt):
    post_choice(proof_app.test_client())
    result = export(proof_app, tmp_path / "log", "--format", fmt)
    expected = b"\xef\xbb\xbf" + ",".join(COLUMNS).encode() + b"\r\n" if fmt == "csv" else b""
    assert (tmp_path / "log").read_bytes() == expected
    assert "demo: no signed tree head yet, so the export holds no records" in result.stderr


def test_export_of_a_time_range(proof_app, tmp_path):
    insert_records(proof_app, [datetime(2026, 3, day, 12, tzinfo=UTC) for day in (1, 10, 20, 30)])
    seal(proof_app)
    export(proof_app, tmp_path / "march.csv", "--since", "2026-03-05", "--until", "2026-03-25T00:00:00Z")
    rows = csv_rows((tmp_path / "march.csv").read_bytes())[1:]
    assert [row[2] for row in rows] == ["2026-03-10T12:00:00.000Z", "2026-03-20T12:00:00.000Z"]
    export(proof_app, tmp_path / "late.csv", "--since", "2026-03-20T12:00:00.001Z")
    assert [row[2] for row in csv_rows((tmp_path / "late.csv").read_bytes())[1:]] == ["2026-03-30T12:00:00.000Z"]
    export(proof_app, tmp_path / "none.csv", "--since", "2026-04-01")
    assert len(csv_rows((tmp_path / "none.csv").read_bytes())) == 1


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-03-05T25:00"])
def test_bad_dates_are_refused_with_the_option_named(proof_app, tmp_path, value):
    result = run(proof_app, "export", "--site", "demo", "--since", value, "-o", str(tmp_path / "x.csv"))
    assert result.exit_code == 2
    assert "--since" in result.output and repr(value) in result.output


def test_http_export_needs_an_admin_token(proof_app):
    client = proof_app.test_client()
    for fmt in ("csv", "jsonl", "iso27560", "proof", "bundle"):
        assert client.get(f"/api/v1/sites/demo/export?format={fmt}").status_code == 401
        refused = client.get(f"/api/v1/sites/demo/export?format={fmt}", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert client.get("/api/v1/sites/nowhere/export", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?since=nope", "since"),
        ("?until=2026-02-30", "until"),
        ("?since=0001-01-01T00:00:00%2B01:00", "since"),
        ("?format=xml", "format"),
        ("?tree_size=-1", "tree_size"),
        ("?tree_size=abc", "tree_size"),
        ("?tree_size=99999999999999999999", "tree_size"),
        ("?tree_size=7", "tree_size"),  # no head of that size
    ],
)
def test_http_export_refuses_bad_parameters_with_422(proof_app, query, field):
    response = proof_app.test_client().get(f"/api/v1/sites/demo/export{query}", headers=ADMIN)
    assert response.status_code == 422
    assert list(response.json["error"]["fields"]) == [field]


def test_http_export_streams_the_same_bytes_as_the_command(proof_app, tmp_path):
    client = proof_app.test_client()
    for _ in range(2):
        post_choice(client, user_agent='Agent, with "quotes"')
    awkward = {"user_agent": "a new\nline, é and 😀", "page_url": 'https://shop.example/"x",y'}
    insert_records(proof_app, [datetime.now(UTC)], **awkward)
    seal(proof_app)
    for fmt in ("csv", "jsonl", "iso27560"):
        response = client.get(f"/api/v1/sites/demo/export?format={fmt}&since=2020-01-01", headers=ADMIN)
        assert response.status_code == 200 and response.is_streamed
        extension = "csv" if fmt == "csv" else "jsonl"
        assert response.headers["Content-Disposition"] == f'attachment; filename="consent-demo-20200101.{extension}"'
        assert response.headers["X-Consent-Tree-Size"] == "3"
        assert response.headers["Cache-Control"] == "no-store"
        export(proof_app, tmp_path / fmt, "--format", fmt, "--since", "2020-01-01")
        assert response.get_data() == (tmp_path / fmt).read_bytes()
    default = client.get("/api/v1/sites/demo/export", headers=ADMIN)
    assert default.mimetype == "text/csv" and len(csv_rows(default.get_data())) == 4


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_memory_stays_flat_during_a_large_export(proof_app, database_url, tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    from proof_data import fill

    fill(database_url, "demo", "0" * 64, 200_000)
    seal(proof_app)
    output, proof = tmp_path / "large.csv", tmp_path / "large.proof.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSENT_DATABASE_URL": database_url,
        "CONSENT_SECRET_KEY": "test-secret-key",
        "CONSENT_ADMIN_TOKENS": "test-admin-token",
        "CONSENT_INVENTORY": str(ROOT / "cookies.yaml"),
    }
    command = [sys.executable, "-c", "from consent.cli import main; main()", "export", "--site", "demo"]
    command += ["-o", str(output), "--proof", str(proof)]
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
    assert b"100000 records exported" in errors and b"200000 records exported" in errors
    # Read in many ranges (on PostgreSQL by two connections at once), yet complete and in order:
    rows = csv_rows(output.read_bytes())
    assert len(rows) == 200_001 and all(len(row) == len(COLUMNS) for row in rows)
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(ids) and len(set(ids)) == 200_000
    document = json.loads(proof.read_text())
    assert document["export"]["end_index"] - document["export"]["first_index"] == 200_000


def test_readers_that_start_late_still_find_the_exports_snapshot(proof_app, tmp_path, monkeypatch):
    """On PostgreSQL the range readers join the export's snapshot however late they start."""
    work = SnapshotStreams._work

    def late(self: SnapshotStreams[Any], stream: int) -> None:
        time.sleep(0.5)
        work(self, stream)

    monkeypatch.setattr(SnapshotStreams, "_work", late)
    client = proof_app.test_client()
    for _ in range(3):
        post_choice(client)
    seal(proof_app)
    export(proof_app, tmp_path / "log.csv")
    assert len(csv_rows((tmp_path / "log.csv").read_bytes())) == 4
