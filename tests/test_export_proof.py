"""The proof beside an export: it covers exactly the exported records, under a signed head, pinned by tree_size."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from click.testing import Result
from flask import Flask
from hypothesis import HealthCheck, settings
from sqlalchemy import delete, insert, select

from consent.export.formats import COLUMNS
from consent.inventory.sites import canonical_hash
from consent.ledger import tree
from consent.ledger.canonical import HASHED_FIELDS, record_hash
from consent.ledger.leaves import LEAF, unpack_leaves
from consent.ledger.signing import EXPORT, TREE_HEAD, PublicKey, check, parse_keys
from consent.store.models import ConsentRecord, InventoryVersion, db
from tests.support.consent_log import post_choice, run

ADMIN = {"Authorization": "Bearer test-admin-token"}
ORIGIN = "http://localhost:8000"
EXPORT_URL = "/api/v1/sites/demo/export"


def seal(app: Flask) -> None:
    result = run(app, "seal")
    assert result.exit_code == 0, result.output


def recorded(app: Flask, count: int) -> None:
    client = app.test_client()
    for _ in range(count):
        post_choice(client)


def insert_record(app: Flask, moment: datetime, record_id: int | None = None) -> None:
    """A record written directly into the table, as someone with write access would."""
    row = {
        "site": "demo", "event_id": str(uuid.uuid4()), "consent_id": str(uuid.uuid4()), "recorded_at": moment,
        "action": "accept_all", "necessary": True, "functional": True, "analytics": True, "advertising": True,
        "revision": 1, "inventory_hash": "0" * 64, "language": "en", "page_url": "https://shop.example/",
        "ip": "192.0.2.0", "user_agent": "Mozilla/5.0", "gpc": False, "dnt": False,
    }  # fmt: skip
    row["record_hash"] = record_hash({name: row[name] for name in HASHED_FIELDS})
    if record_id is not None:
        row["id"] = record_id
    with app.app_context():
        db.session.execute(insert(ConsentRecord).values(row))
        db.session.commit()


def published_keys(app: Flask) -> dict[str, PublicKey]:
    return parse_keys(app.test_client().get("/api/v1/ledger/keys").json)


def proof_leaves(proof: dict[str, Any]) -> list[tuple[int, int, bytes, bytes]]:
    """The (id, recorded_at ms, consent fingerprint, leaf hash) of the proven leaves, in tree order."""
    leaves = b"".join(base64.b64decode(seal["leaves"]) for seal in proof["seals"])
    return unpack_leaves(leaves)


def problems(proof: dict[str, Any], exported: list[dict[str, Any]], keys: dict[str, PublicKey], fmt: str) -> list[str]:
    """What is wrong with ``proof`` as the proof of the records ``exported`` (as ``fmt``); empty if nothing."""
    found = []
    head, statement = proof["head"], proof["export"]
    if reason := check(head, keys, TREE_HEAD):
        found.append(f"head: {reason}")
    if reason := check(statement, keys, EXPORT, at="exported_at"):
        found.append(f"export statement: {reason}")
    if statement["format"] != fmt:
        found.append(f"proves format {statement['format']}")
    if (statement["tree_size"], statement["root_hash"]) != (head["tree_size"], head["root_hash"]):
        found.append("the statement names another head")
    leaves = proof_leaves(proof)
    if len(leaves) != statement["end_index"] - statement["first_index"]:
        found.append(f"{len(leaves)} leaves for the range [{statement['first_index']}, {statement['end_index']})")
    root = tree.range_root(statement["first_index"], head["tree_size"], [leaf[3] for leaf in leaves],
                           [bytes.fromhex(value) for value in proof["range_proof"]])  # fmt: skip
    if root is None or root.hex() != head["root_hash"]:
        found.append("the leaves and the range proof do not give the head's root")
    by_leaf = [(record_id, digest.hex()) for record_id, _, _, digest in leaves]
    by_file = [(int(record["record_id"]), record["record_hash"]) for record in exported]
    for record in exported:
        if record_hash(record) != record["record_hash"]:
            found.append(f"record {record['record_id']}: its values do not give its record_hash")
    if by_leaf != by_file:
        found.append(f"the leaves {by_leaf} are not the exported records {by_file}")
    return found


def csv_records(data: bytes) -> list[dict[str, Any]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(COLUMNS) and all(len(row) == len(COLUMNS) for row in rows)
    records = []
    for row in rows[1:]:
        record: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
        for name in ("necessary", "functional", "analytics", "advertising", "gpc", "dnt"):
            record[name] = record[name] == "true"
        record["revision"], record["record_id"] = int(record["revision"]), int(record["record_id"])
        record["user_agent"] = record["user_agent"].removeprefix("'")
        # The regional fields: empty on a record that does not carry them.
        record["regime"], record["region"] = record["regime"] or None, record["region"] or None
        record["sec_gpc"] = {"true": True, "false": False}.get(record["sec_gpc"])
        records.append(record)
    return records


def jsonl_records(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def cli_export(app: Flask, tmp_path: Path, *options: str) -> tuple[bytes, dict[str, Any], Result]:
    data, proof = tmp_path / "export", tmp_path / "proof.json"
    result = run(app, "export", "--site", "demo", "-o", str(data), "--proof", str(proof), *options)
    assert result.exit_code == 0, result.output
    return data.read_bytes(), json.loads(proof.read_text()), result


@pytest.mark.parametrize(("fmt", "parse"), [("csv", csv_records), ("jsonl", jsonl_records)])
def test_the_proof_covers_exactly_the_exported_records(proof_app, tmp_path, fmt, parse):
    recorded(proof_app, 5)
    seal(proof_app)
    data, proof, _ = cli_export(proof_app, tmp_path, "--format", fmt)
    exported = parse(data)
    assert len(exported) == 5
    assert proof["type"] == "consent/export-proof/v1" and proof["site"] == "demo"
    assert proof["head"]["tree_size"] == 5 and proof["export"]["first_index"] == 0
    assert problems(proof, exported, published_keys(proof_app), fmt) == []
    assert proof["keys"] == proof_app.test_client().get("/api/v1/ledger/keys").json
    assert {version["hash"] for version in proof["inventories"]} >= {record["inventory_hash"] for record in exported}


def test_the_check_of_a_proof_fails_on_a_changed_record_a_forged_head_or_a_dropped_leaf(proof_app, tmp_path):
    recorded(proof_app, 3)
    seal(proof_app)
    data, proof, _ = cli_export(proof_app, tmp_path)
    keys = published_keys(proof_app)
    changed = csv_records(data)
    changed[1]["advertising"] = True
    assert any("record_hash" in problem for problem in problems(proof, changed, keys, "csv"))
    forged = {**proof, "head": {**proof["head"], "tree_size": 2}}
    assert any(problem.startswith("head:") for problem in problems(forged, csv_records(data), keys, "csv"))
    assert problems(proof, csv_records(data), keys, "jsonl") == ["proves format csv"]
    assert problems(proof, csv_records(data)[1:], keys, "csv")


def test_a_time_range_is_proven_as_its_run_of_leaves(proof_app, tmp_path):
    for day in (1, 10, 20, 30):
        insert_record(proof_app, datetime(2026, 3, day, 12, tzinfo=UTC))
    seal(proof_app)
    data, proof, _ = cli_export(proof_app, tmp_path, "--since", "2026-03-05", "--until", "2026-03-25")
    exported = csv_records(data)
    assert [record["recorded_at"] for record in exported] == ["2026-03-10T12:00:00.000Z", "2026-03-20T12:00:00.000Z"]
    statement = proof["export"]
    assert (statement["first_index"], statement["end_index"], statement["tree_size"]) == (1, 3, 4)
    assert (statement["since"], statement["until"]) == ("2026-03-05T00:00:00.000Z", "2026-03-25T00:00:00.000Z")
    assert problems(proof, exported, published_keys(proof_app), "csv") == []
    empty, nothing, _ = cli_export(proof_app, tmp_path, "--since", "2027-01-01")
    assert csv_records(empty) == [] and nothing["export"]["first_index"] == nothing["export"]["end_index"] == 4
    assert problems(nothing, [], published_keys(proof_app), "csv") == []


def test_a_record_inserted_behind_the_ledgers_back_is_exported_for_the_verifier_to_name(proof_app, tmp_path):
    recorded(proof_app, 3)
    seal(proof_app)
    with proof_app.app_context():
        ids = list(db.session.scalars(select(ConsentRecord.id).order_by(ConsentRecord.id)))
        db.session.execute(delete(ConsentRecord).where(ConsentRecord.id == ids[1]))
        db.session.commit()
    # Replaced by a record of another time, with a hash of its own: inside the id range, so exported.
    insert_record(proof_app, datetime(2020, 1, 1, tzinfo=UTC), record_id=ids[1])
    data, proof, _ = cli_export(proof_app, tmp_path, "--since", "2025-01-01")
    exported = csv_records(data)
    assert [int(record["record_id"]) for record in exported] == ids
    assert exported[1]["recorded_at"] == "2020-01-01T00:00:00.000Z"
    assert [leaf[0] for leaf in proof_leaves(proof)] == ids
    found = problems(proof, exported, published_keys(proof_app), "csv")
    assert len(found) == 1 and found[0].startswith("the leaves")


def test_tree_size_pins_the_head_so_that_an_export_and_its_proof_agree(proof_app):
    client = proof_app.test_client()
    recorded(proof_app, 3)
    seal(proof_app)
    exported = client.get(EXPORT_URL, headers=ADMIN)
    assert exported.headers["X-Consent-Tree-Size"] == "3"
    recorded(proof_app, 2)
    seal(proof_app)  # a newer head between the two requests
    newest = client.get(f"{EXPORT_URL}?format=proof", headers=ADMIN)
    assert newest.headers["X-Consent-Tree-Size"] == "5" and newest.json["head"]["tree_size"] == 5
    pinned = client.get(f"{EXPORT_URL}?format=proof&tree_size=3&proves=csv", headers=ADMIN)
    assert pinned.status_code == 200 and pinned.mimetype == "application/json"
    assert pinned.headers["X-Consent-Tree-Size"] == "3"
    assert pinned.headers["Content-Disposition"] == 'attachment; filename="consent-demo.proof.json"'
    keys = published_keys(proof_app)
    assert problems(pinned.json, csv_records(exported.get_data()), keys, "csv") == []
    assert problems(newest.json, csv_records(exported.get_data()), keys, "csv")  # two records more
    again = client.get(f"{EXPORT_URL}?tree_size=3", headers=ADMIN)
    assert again.get_data() == exported.get_data()
    assert len(csv_records(client.get(f"{EXPORT_URL}?format=csv", headers=ADMIN).get_data())) == 5


def test_http_and_the_command_prove_the_same_range(proof_app, tmp_path):
    recorded(proof_app, 4)
    seal(proof_app)
    _, proof, _ = cli_export(proof_app, tmp_path, "--since", "2020-01-01")
    client = proof_app.test_client()
    served = client.get(f"{EXPORT_URL}?format=proof&since=2020-01-01&proves=jsonl", headers=ADMIN).json
    for name in ("head", "range_proof", "seals", "inventories", "keys", "erasures"):
        assert served[name] == proof[name], name
    different = {"exported_at", "signature", "format"}
    assert {k: v for k, v in served["export"].items() if k not in different} == {
        k: v for k, v in proof["export"].items() if k not in different
    }
    assert (proof["export"]["format"], served["export"]["format"]) == ("csv", "jsonl")
    assert client.get(f"{EXPORT_URL}?format=proof", headers=ADMIN).json["export"]["format"] == "csv"
    refused = client.get(f"{EXPORT_URL}?format=proof&proves=bundle", headers=ADMIN)
    assert refused.status_code == 422 and list(refused.json["error"]["fields"]) == ["proves"]


def test_a_proof_before_any_head_proves_an_empty_export(proof_app, tmp_path):
    recorded(proof_app, 1)
    data, proof, result = cli_export(proof_app, tmp_path)
    assert csv_records(data) == [] and proof["head"] is None and proof["seals"] == []
    assert proof["export"]["tree_size"] == 0 and proof["export"]["end_index"] == 0
    assert "no signed tree head yet" in result.stderr
    response = proof_app.test_client().get(f"{EXPORT_URL}?format=proof", headers=ADMIN)
    assert response.status_code == 200 and response.headers["X-Consent-Tree-Size"] == "0"
    assert response.json["head"] is None


def _bundle_checks(app: Flask, archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    with app.app_context():
        versions = {row.hash: row.content for row in db.session.scalars(select(InventoryVersion))}
    assert versions
    assert names[:3] == ["records.csv", "records.jsonl", "proof.json"] and names[-1] == "README.txt"
    assert sorted(names[3:-1]) == sorted(f"inventories/{digest}.json" for digest in versions)
    for digest, content in versions.items():
        stored = json.loads(archive.read(f"inventories/{digest}.json"))
        assert stored == content and canonical_hash(stored) == digest
    from_csv = csv_records(archive.read("records.csv"))
    from_jsonl = jsonl_records(archive.read("records.jsonl"))
    assert len(from_csv) == 3 and from_csv == from_jsonl
    proof = json.loads(archive.read("proof.json"))
    assert problems(proof, from_csv, published_keys(app), "bundle") == []
    readme = archive.read("README.txt").decode()
    assert "python -m consent.verify bundle.zip --keys keys.json" in readme and "/api/v1/ledger/keys" in readme


def test_the_bundle_holds_records_proof_inventories_and_a_readme(proof_app, tmp_path):
    recorded(proof_app, 3)
    seal(proof_app)
    result = run(proof_app, "export", "--site", "demo", "--bundle", str(tmp_path / "bundle.zip"))
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        assert archive.testzip() is None
        _bundle_checks(proof_app, archive)
    response = proof_app.test_client().get(f"{EXPORT_URL}?format=bundle", headers=ADMIN)
    assert response.status_code == 200 and response.mimetype == "application/zip" and response.is_streamed
    assert response.headers["Content-Disposition"] == 'attachment; filename="consent-demo.zip"'
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
        _bundle_checks(proof_app, archive)
        with zipfile.ZipFile(tmp_path / "bundle.zip") as written:
            assert archive.read("records.csv") == written.read("records.csv")


def test_a_bundle_goes_without_other_outputs(proof_app, tmp_path):
    result = run(
        proof_app, "export", "--site", "demo", "--bundle", str(tmp_path / "b.zip"), "--proof", str(tmp_path / "p")
    )
    assert result.exit_code == 2 and "--bundle" in result.output


def test_openapi_describes_every_export_format_and_parameter(proof_app):
    document = proof_app.test_client().get("/api/v1/openapi.json").json
    operation = document["paths"]["/api/v1/sites/{site}/export"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["format"]["schema"]["enum"] == ["csv", "jsonl", "iso27560", "proof", "bundle"]
    assert {"since", "until", "tree_size"} <= set(parameters)
    assert parameters["proves"]["schema"]["enum"] == ["csv", "jsonl", "iso27560"]
    assert parameters["tree_size"]["schema"] == {"type": "integer", "minimum": 0}
    ok = operation["responses"]["200"]
    assert set(ok["content"]) == {"text/csv", "application/jsonl", "application/json", "application/zip"}
    assert "X-Consent-Tree-Size" in ok["headers"]
    assert {"401", "403", "404", "422"} <= set(operation["responses"])
    assert operation["security"] == [{"admin": []}]
    assert "ExportProof" in document["components"]["schemas"]


def test_the_proof_streams_a_seal_at_a_time(proof_app, tmp_path):
    recorded(proof_app, 3)
    seal(proof_app)
    recorded(proof_app, 2)
    seal(proof_app)
    _, proof, _ = cli_export(proof_app, tmp_path)
    assert [(seal["seq"], seal["leaf_count"]) for seal in proof["seals"]] == [(1, 3), (2, 2)]
    assert all(len(base64.b64decode(seal["leaves"])) == seal["leaf_count"] * LEAF.size for seal in proof["seals"])


@pytest.fixture
def export_schema(make_app: Any) -> Any:
    app = make_app(RATELIMIT_ENABLED=False, SEAL_INTERVAL=0, SEAL_GRACE=0)
    recorded(app, 2)
    seal(app)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(path="/api/v1/sites/{site}/export")


fuzzed = schemathesis.pytest.from_fixture("export_schema")
calls = {"count": 0}


@fuzzed.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_fuzzed_export_answers_as_documented(case: Any) -> None:
    """Every format and parameter the description allows, with and without a token: documented answers only."""
    calls["count"] += 1
    if calls["count"] % 2:
        case.path_parameters["site"] = "demo"
    headers = ADMIN if calls["count"] % 3 else {}
    case.call_and_validate(
        headers=headers,
        excluded_checks=[schemathesis.checks.positive_data_acceptance, schemathesis.checks.negative_data_rejection],
    )
