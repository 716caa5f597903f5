"""Offline verify: an export and its proof checked with the public keys alone, in a process that knows nothing else."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from consent.ledger.signing import PublicKey, key_id
from consent.verify import offline
from tests.support.export_files import (
    export,
    insert_records,
    plain_record,
    post_choices,
    run,
    seal,
    stored_ids,
    write_keys,
)
from tests.support.offline import CHANGES, ROOT, findings, rewrite_csv, verify


@pytest.fixture
def exported(proof_app: Flask, tmp_path: Path) -> dict[str, Path]:
    """Six records posted through the API, sealed, exported as CSV with its proof, and the key set."""
    post_choices(proof_app)
    seal(proof_app)
    csv_path = tmp_path / "export.csv"
    keys = write_keys(proof_app, tmp_path / "keys.json")
    return {"csv": csv_path, "proof": export(proof_app, csv_path), "keys": keys}


def test_the_verifier_needs_no_flask(tmp_path):
    code = (
        "import sys, consent.verify.offline, consent.verify.__main__\n"
        "assert not {'flask', 'sqlalchemy', 'click', 'werkzeug'} & set(sys.modules), sorted(sys.modules)\n"
    )
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "iso27560"])
def test_an_untouched_export_verifies_offline(proof_app, tmp_path, fmt):
    post_choices(proof_app)
    seal(proof_app)
    path = tmp_path / f"export.{fmt}"
    proof = export(proof_app, path, fmt)
    keys = write_keys(proof_app, tmp_path / "keys.json")
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    result = verify(path, "--proof", proof, "--keys", keys, cwd=elsewhere)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo: intact; 6 records checked, 6 sealed under signed heads" in result.stdout
    assert "keys: checked against the trusted key set" in result.stdout


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_every_change_is_named_by_record_id_and_consent_id(proof_app, exported, kind):
    log = stored_ids(proof_app)
    rewrite_csv(exported["csv"], CHANGES[kind])
    result = verify(exported["csv"], "--proof", exported["proof"], "--keys", exported["keys"])
    assert result.returncode == 1, result.stdout
    assert "NOT INTACT" in result.stdout
    expected = {
        "changed": ("changed", *log[0]),
        "flag": ("changed", *log[1]),
        "removed": ("removed", *log[1]),
        "reordered": ("reordered", *log[1]),
        "inserted": ("inserted", 99999, log[3][1]),
        "unguarded": ("changed", *log[1]),
    }[kind]
    assert expected in findings(result.stdout), result.stdout


def test_a_changed_json_lines_record_is_named(proof_app, tmp_path):
    post_choices(proof_app)
    seal(proof_app)
    path = tmp_path / "export.jsonl"
    proof = export(proof_app, path, "jsonl")
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[2])
    record["analytics"] = not record["analytics"]
    path.write_text("".join([*lines[:2], json.dumps(record) + "\n", *lines[3:]]))
    result = verify(path, "--proof", proof, "--keys", write_keys(proof_app, tmp_path / "keys.json"))
    assert result.returncode == 1
    assert ("changed", record["record_id"], record["consent_id"]) in findings(result.stdout)


def test_the_flask_command_verifies_a_file_the_same_way(proof_app, exported):
    args = ["verify", str(exported["csv"]), "--proof", str(exported["proof"]), "--keys", str(exported["keys"])]
    result = run(proof_app, *args)
    assert result.exit_code == 0, result.output
    assert "demo: intact; 6 records checked, 6 sealed" in result.output
    rewrite_csv(exported["csv"], CHANGES["removed"])
    result = run(proof_app, *args)
    assert result.exit_code == 1
    assert ("removed", *stored_ids(proof_app)[1]) in findings(result.output)


def test_without_keys_the_verdict_says_they_were_not_checked(exported):
    result = verify(exported["csv"], "--proof", exported["proof"])
    assert result.returncode == 3, result.stdout
    assert "taken from the proof UNCHECKED" in result.stdout
    assert "NOT authenticated" in result.stdout


def _key_set(*keys: PublicKey) -> dict[str, Any]:
    return {"keys": [key.as_json() for key in keys]}


def test_a_proof_signed_with_a_key_the_auditor_does_not_trust_fails(exported, tmp_path):
    stranger = Ed25519PrivateKey.generate().public_key()
    keys = tmp_path / "other-keys.json"
    keys.write_text(json.dumps(_key_set(PublicKey(key_id(stranger), stranger))))
    result = verify(exported["csv"], "--proof", exported["proof"], "--keys", keys)
    assert result.returncode == 1
    assert "which is not in the trusted key set" in result.stdout
    assert "which is not one of the trusted keys" in result.stdout


def test_a_key_outside_its_validity_fails(exported, tmp_path):
    document = json.loads(exported["keys"].read_text())
    for key in document["keys"]:
        key["not_after"] = "2000-01-01T00:00:00Z"  # retired long before it signed this head
    keys = tmp_path / "retired.json"
    keys.write_text(json.dumps(document))
    result = verify(exported["csv"], "--proof", exported["proof"], "--keys", keys)
    assert result.returncode == 1
    assert "outside that key's validity" in result.stdout


@pytest.fixture
def key_server(exported: dict[str, Path]) -> Iterator[str]:
    """The key set served over HTTP, as ``GET /api/v1/ledger/keys`` serves it."""
    body = exported["keys"].read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/ledger/keys"
    server.shutdown()
    server.server_close()


def test_the_keys_can_be_fetched_from_a_url(exported, key_server):
    result = verify(exported["csv"], "--proof", exported["proof"], "--keys", key_server)
    assert result.returncode == 0, result.stdout + result.stderr


def _forge(proof: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(proof.read_text())
    change(document)
    proof.write_text(json.dumps(document))


def _other_leaf(document: dict[str, Any]) -> None:
    leaves = bytearray(base64.b64decode(document["seals"][0]["leaves"]))
    leaves[-1] ^= 1  # the last leaf's hash
    document["seals"][0]["leaves"] = base64.b64encode(bytes(leaves)).decode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["head"].update(root_hash="00" * 32), "its signature does not verify"),
        (lambda d: d["export"].update(first_index=1), "the export statement: its signature does not verify"),
        (_other_leaf, "with the range proof do not give the head's root"),
        (lambda d: d["range_proof"].append("00" * 32), "with the range proof do not give the head's root"),
        (lambda d: d.update(head=None), "the proof has no signed tree head"),
    ],
)
def test_a_forged_proof_fails(exported, change, message):
    _forge(exported["proof"], change)
    result = verify(exported["csv"], "--proof", exported["proof"], "--keys", exported["keys"])
    assert result.returncode == 1, result.stdout
    assert message in result.stdout


def test_a_range_that_does_not_start_at_the_first_leaf_is_proven(proof_app, tmp_path):
    records = [plain_record(number) for number in range(1, 12)]
    insert_records(proof_app, records)
    seal(proof_app)
    path = tmp_path / "export.csv"
    since = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    proof = export(proof_app, path, since=since)
    statement = json.loads(proof.read_text())["export"]
    assert (statement["first_index"], statement["end_index"], statement["tree_size"]) == (4, 11, 11)
    result = verify(path, "--proof", proof, "--keys", write_keys(proof_app, tmp_path / "keys.json"))
    assert result.returncode == 0, result.stdout
    assert "7 records checked, 7 sealed" in result.stdout
    rewrite_csv(path, lambda lines: lines[1:])  # the first exported record left out
    result = verify(path, "--proof", proof, "--keys", tmp_path / "keys.json")
    assert result.returncode == 1
    assert ("removed", *stored_ids(proof_app)[4]) in findings(result.stdout)


def test_erased_records_may_be_absent(proof_app, exported, tmp_path):
    forgotten = stored_ids(proof_app)[2]
    result = run(proof_app, "forget", "--site", "demo", forgotten[1])
    assert result.exit_code == 0, result.output
    path = tmp_path / "after.csv"
    proof = export(proof_app, path)
    result = verify(path, "--proof", proof, "--keys", exported["keys"])
    assert result.returncode == 0, result.stdout
    assert "5 records checked, 5 sealed under signed heads; 0 not sealed yet, 1 erased" in result.stdout
    _forge(proof, lambda document: document.update(erasures=[]))  # the erasure kept back
    result = verify(path, "--proof", proof, "--keys", exported["keys"])
    assert result.returncode == 1
    assert ("removed", forgotten[0], "unknown") in findings(result.stdout)  # the erasure wiped its label


def _bundle(app: Flask, folder: Path) -> Path:
    csv_path, jsonl_path = folder / "records.csv", folder / "records.jsonl"
    proof = export(app, csv_path, "csv", folder / "proof.json")
    export(app, jsonl_path, "jsonl", folder / "jsonl-proof.json")
    bundle = folder / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(csv_path, "records.csv")
        out.write(jsonl_path, "records.jsonl")
        out.write(proof, "proof.json")
        out.writestr("README.txt", "python -m consent.verify bundle.zip --keys KEYS\n")
    return bundle


def test_a_bundle_verifies_both_record_files_in_one_command(proof_app, exported, tmp_path):
    bundle = _bundle(proof_app, tmp_path)
    result = verify(bundle, "--keys", exported["keys"])
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("demo: intact; 6 records checked, 6 sealed") == 2
    assert "file: records.csv (csv)" in result.stdout and "file: records.jsonl (jsonl)" in result.stdout
    lines = (tmp_path / "records.jsonl").read_text().splitlines(keepends=True)
    with zipfile.ZipFile(bundle, "w") as out:  # the same bundle, one JSON line left out
        out.write(tmp_path / "records.csv", "records.csv")
        out.writestr("records.jsonl", "".join(lines[:1] + lines[2:]))
        out.write(tmp_path / "proof.json", "proof.json")
    result = verify(bundle, "--keys", exported["keys"])
    assert result.returncode == 1
    assert ("removed", *stored_ids(proof_app)[1]) in findings(result.stdout)
    assert "demo: intact; 6 records checked" in result.stdout  # the CSV is still fine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proof", "missing.json"], "cannot be read"),
        ([], "give the export's proof with --proof"),
    ],
)
def test_unusable_input_exits_2(exported, args, message):
    result = verify(exported["csv"], *args, cwd=exported["csv"].parent)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout


def test_exit_status_table():
    assert offline.exit_status([], True) == 0
    assert offline.exit_status([], False) == 3


@pytest.mark.parametrize("change", ["status", "page in one process", "consent id", "own field"])
def test_a_changed_dpv_27560_record_is_named(proof_app, tmp_path, change):
    post_choices(proof_app)
    seal(proof_app)
    path = tmp_path / "export.jsonl"
    proof = export(proof_app, path, "iso27560")
    keys = write_keys(proof_app, tmp_path / "keys.json")
    assert verify(path, "--proof", proof, "--keys", keys).returncode == 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[2])
    own, processes = record["consent:record"], record["dpv:hasProcess"]
    named = (own["record_id"], record["dpv:hasDataSubject"]["dct:identifier"])
    if change == "status":  # a refusal made to read as consent given
        status = processes[3]["dpv:hasConsentStatus"][0]
        assert status["@type"] == ["dpv:ConsentRefused"]
        status["@type"] = ["dpv:ConsentGiven"]
    elif change == "page in one process":
        processes[2]["dpv:hasConsentStatus"][0]["dpv:isExercisedAt"] = "https://elsewhere.example/"
    elif change == "consent id":
        record["dpv:hasDataSubject"]["dct:identifier"] = "00000000-0000-4000-8000-000000000000"
    else:
        own["ip"] = "203.0.113.0"
    path.write_text("".join([*lines[:2], json.dumps(record) + "\n", *lines[3:]]), encoding="utf-8")
    result = verify(path, "--proof", proof, "--keys", keys)
    assert result.returncode == 1 and "NOT INTACT" in result.stdout
    (found,) = [f for f in findings(result.stdout) if f[0] == "changed"]
    assert found[1] == named[0]
