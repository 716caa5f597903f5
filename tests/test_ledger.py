"""The tamper-evident log: sealing, and verify naming every changed, removed, inserted or reordered record."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from consent import chain, ledger, sealing
from consent.cli import cli
from consent.models import ConsentRecord, LedgerCheckpoint, db
from consent.recording import HASHED_FIELDS, record_hash

ORIGIN = "http://localhost:8000"
FINDING = re.compile(r"^(\w+)\s+record (\d+)\s+consent ID (\S+)", re.MULTILINE)


@pytest.fixture
def proof_app(make_app: Any) -> Flask:
    """Sealing only when asked (``consent seal``), with no grace period to wait for."""
    return make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)


def post_choice(client: FlaskClient, **body: Any) -> dict[str, Any]:
    """Record a choice as the banner would; the response body (consent_id, receipt, ...)."""
    user_agent = body.pop("user_agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
    payload = {
        "event_id": uuid.uuid4().hex,
        "action": "custom",
        "choices": {"functional": True, "analytics": False, "advertising": False},
        "revision": 1,
        "language": "en",
        "page_url": "https://shop.example/products/42?ref=mail",
        **body,
    }
    headers = {"Origin": ORIGIN, "User-Agent": user_agent}
    response = client.post(
        "/api/v1/sites/demo/consents", data=json.dumps(payload), headers=headers, content_type="text/plain"
    )
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, list(args))


def execute(app: Flask, statement: str, **params: Any) -> None:
    """Tamper with the database directly, as someone with write access would."""
    with app.app_context():
        db.session.execute(text(statement), params)
        db.session.commit()


def records(app: Flask) -> list[tuple[int, str]]:
    """(id, consent_id) of every stored record, in id order."""
    with app.app_context():
        rows = db.session.execute(select(ConsentRecord.id, ConsentRecord.consent_id).order_by(ConsentRecord.id))
        return [(row.id, row.consent_id) for row in rows]


def findings(output: str) -> set[tuple[str, int, str]]:
    """(kind, record id, consent ID) of each record verify names."""
    return {(kind, int(record_id), consent_id) for kind, record_id, consent_id in FINDING.findall(output)}


def stored_values(app: Flask, record_id: int) -> dict[str, Any]:
    with app.app_context():
        row = db.session.get(ConsentRecord, record_id)
        assert row is not None
        return {name: getattr(row, name) for name in HASHED_FIELDS}


def sealed_log(app: Flask, count: int) -> list[tuple[int, str]]:
    """``count`` recorded choices, sealed."""
    client = app.test_client()
    for _ in range(count):
        post_choice(client)
    result = run(app, "seal")
    assert result.exit_code == 0, result.output
    return records(app)


def test_an_untouched_sealed_log_verifies(proof_app):
    log = sealed_log(proof_app, 3)
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 0, result.output
    assert "demo: intact; 3 records checked, 3 sealed" in result.output
    assert "newest checkpoint: seq 1, 3 leaves" in result.output
    assert f"ids up to {log[-1][0]}" in run(proof_app, "seal").output


def test_verify_names_a_changed_record(proof_app):
    log = sealed_log(proof_app, 3)
    record_id, consent_id = log[1]
    execute(proof_app, "UPDATE consent_records SET advertising = :granted WHERE id = :id", granted=True, id=record_id)
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert findings(result.output) == {("changed", record_id, consent_id)}
    assert "its fields do not match its record_hash" in result.output


def test_verify_names_a_record_changed_along_with_its_hash(proof_app):
    log = sealed_log(proof_app, 3)
    record_id, consent_id = log[0]
    values = stored_values(proof_app, record_id) | {"action": "accept_all", "advertising": True}
    execute(
        proof_app,
        "UPDATE consent_records SET action = 'accept_all', advertising = :granted, record_hash = :digest "
        "WHERE id = :id",
        granted=True,
        digest=record_hash(values),
        id=record_id,
    )
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert findings(result.output) == {("changed", record_id, consent_id)}
    assert "differs from the record that was sealed" in result.output


def test_verify_names_a_removed_record_and_its_consent_id(proof_app):
    log = sealed_log(proof_app, 3)
    record_id, consent_id = log[2]
    execute(proof_app, "DELETE FROM consent_records WHERE id = :id", id=record_id)
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert findings(result.output) == {("removed", record_id, consent_id)}


def test_verify_names_a_record_inserted_into_the_sealed_log(proof_app):
    client = proof_app.test_client()
    for _ in range(3):
        post_choice(client)
    gap, _ = records(proof_app)[1]
    # An id the log never kept (on PostgreSQL, a rolled-back insert or a replay leaves such gaps).
    execute(proof_app, "DELETE FROM consent_records WHERE id = :id", id=gap)
    assert run(proof_app, "seal").exit_code == 0
    forged = stored_values(proof_app, records(proof_app)[0][0]) | {
        "event_id": "forged-event",
        "consent_id": str(uuid.uuid4()),
    }
    columns = ", ".join(("id", *HASHED_FIELDS, "record_hash"))
    marks = ", ".join(f":{name}" for name in ("id", *HASHED_FIELDS, "record_hash"))
    execute(
        proof_app,
        f"INSERT INTO consent_records ({columns}) VALUES ({marks})",
        id=gap,
        **forged,
        record_hash=record_hash(forged),
    )
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert findings(result.output) == {("inserted", gap, forged["consent_id"])}


def test_verify_names_records_whose_order_was_swapped(proof_app):
    log = sealed_log(proof_app, 4)
    (first, first_consent), (second, second_consent) = log[1], log[2]
    execute(proof_app, "UPDATE consent_records SET id = -1 WHERE id = :id", id=first)
    execute(proof_app, "UPDATE consent_records SET id = :new WHERE id = :old", new=first, old=second)
    execute(proof_app, "UPDATE consent_records SET id = :new WHERE id = -1", new=second)
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    # Each id now holds the other's record: both are named, each with the consent ID it now holds.
    assert findings(result.output) == {("reordered", first, second_consent), ("reordered", second, first_consent)}
    assert f"holds the record sealed as record {second}" in result.output


def test_verify_lists_every_tampered_record_at_once(proof_app):
    log = sealed_log(proof_app, 6)
    execute(proof_app, "UPDATE consent_records SET language = 'nl' WHERE id = :id", id=log[0][0])
    execute(proof_app, "DELETE FROM consent_records WHERE id IN (:a, :b)", a=log[2][0], b=log[4][0])
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert findings(result.output) == {("changed", *log[0]), ("removed", *log[2]), ("removed", *log[4])}
    assert "NOT INTACT: 3 problems" in result.output


def test_records_not_sealed_yet_are_counted_not_proven(proof_app):
    sealed_log(proof_app, 2)
    post_choice(proof_app.test_client())
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 0
    assert "3 records checked, 2 sealed in checkpoints up to 1; 1 not sealed yet" in result.output


def test_a_checkpoint_forged_without_the_key_is_detected(proof_app):
    log = sealed_log(proof_app, 3)
    record_id, _ = log[1]
    execute(proof_app, "UPDATE consent_records SET analytics = :granted WHERE id = :id", granted=True, id=record_id)
    # The forger rebuilds the seal over the altered record, signing with a key of their own.
    with proof_app.app_context():
        values = stored_values(proof_app, record_id)
        digest = record_hash(values)
        db.session.execute(
            text("UPDATE consent_records SET record_hash = :d WHERE id = :id"), {"d": digest, "id": record_id}
        )
        seal = db.session.scalars(select(LedgerCheckpoint)).one()
        rows = db.session.execute(
            select(
                ConsentRecord.id, ConsentRecord.recorded_at, ConsentRecord.consent_id, ConsentRecord.record_hash
            ).order_by(ConsentRecord.id)
        ).all()
        seal.leaves = b"".join(ledger.pack_leaf(*row) for row in rows)
        seal.root = ledger.leaves_root(seal.leaves)
        forged = chain.as_checkpoint(seal)
        seal.signature = ledger.ledger_signer("not-the-key").get_signature(forged.digest.encode()).decode()
        db.session.commit()
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert "checkpoint 1: its signature does not verify: forged or altered without the key" in result.output
    assert "3 under a checkpoint that does not verify" in result.output


def test_a_removed_checkpoint_is_detected(proof_app, monkeypatch):
    monkeypatch.setattr(sealing, "MAX_LEAVES", 2)
    sealed_log(proof_app, 6)
    execute(proof_app, "DELETE FROM ledger_checkpoints WHERE seq = 2")
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert "checkpoint 3: checkpoints 2..2 are missing" in result.output
    execute(proof_app, "DELETE FROM ledger_checkpoints WHERE seq = 1")
    result = run(proof_app, "verify", "--site", "demo")
    assert "the chain should start at checkpoint 1: older checkpoints were removed" in result.output


def test_the_newest_seal_grows_until_full_then_a_new_one_starts(proof_app, monkeypatch):
    monkeypatch.setattr(sealing, "MAX_LEAVES", 3)
    client = proof_app.test_client()
    post_choice(client)
    run(proof_app, "seal")
    post_choice(client)
    run(proof_app, "seal")
    with proof_app.app_context():
        assert [(c.header["seq"], c.header["leaf_count"]) for c in chain.checkpoints("demo")] == [(1, 2)]
    for _ in range(3):
        post_choice(client)
    run(proof_app, "seal")
    with proof_app.app_context():
        assert [(c.header["seq"], c.header["leaf_count"]) for c in chain.checkpoints("demo")] == [(1, 3), (2, 2)]
    assert run(proof_app, "verify", "--site", "demo").exit_code == 0


def test_a_tampered_open_seal_is_never_signed_again(proof_app):
    client = proof_app.test_client()
    post_choice(client)
    run(proof_app, "seal")
    execute(proof_app, "UPDATE ledger_checkpoints SET leaves = :leaves", leaves=b"\x00" * ledger.LEAF.size)
    post_choice(client)
    run(proof_app, "seal")
    with proof_app.app_context():
        assert [c.header["seq"] for c in chain.checkpoints("demo")] == [1, 2]
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert "checkpoint 1: its leaves do not match its signed root" in result.output


def test_choices_are_sealed_on_the_write_path_within_the_interval(make_app):
    app = make_app(SEAL_INTERVAL=0.2, SEAL_GRACE=0.1)
    client = app.test_client()
    first = post_choice(client)
    for _ in range(50):
        post_choice(client)
        with app.app_context():
            if chain.sealed_through("demo") >= 1:
                break
        time.sleep(0.05)
    with app.app_context():
        assert chain.sealed_through("demo") >= 1
    assert first["consent_id"] in {consent for _, consent in records(app)}
    assert run(app, "verify", "--site", "demo").exit_code == 0


def test_sealers_racing_each_other_seal_each_record_once(proof_app, monkeypatch):
    monkeypatch.setattr(sealing, "MAX_LEAVES", 4)
    client = proof_app.test_client()

    def seal(barrier: threading.Barrier) -> None:
        with proof_app.app_context():
            horizon = sealing.read_horizon()
            barrier.wait(timeout=10)
            sealing.seal("demo", horizon)
            db.session.remove()

    for _ in range(3):
        for _ in range(10):
            post_choice(client)
        barrier = threading.Barrier(3)
        threads = [threading.Thread(target=seal, args=(barrier,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    run(proof_app, "seal")
    with proof_app.app_context():
        stored = chain.checkpoints("demo")
    assert sum(checkpoint.header["leaf_count"] for checkpoint in stored) == 30
    assert run(proof_app, "verify", "--site", "demo").exit_code == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _insert_uncommitted(connection: psycopg.Connection, consent_id: str) -> int:
    """A record inserted in a transaction the caller has not committed yet."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(microsecond=0)
    values = {
        "site": "demo", "event_id": uuid.uuid4().hex, "consent_id": consent_id, "recorded_at": now,
        "action": "reject_all", "necessary": True, "functional": False, "analytics": False, "advertising": False,
        "revision": 1, "inventory_hash": "0" * 64, "language": "en", "page_url": "https://shop.example/",
        "ip": "192.0.2.0", "user_agent": "slow", "gpc": False, "dnt": False,
    }  # fmt: skip
    columns = ", ".join((*HASHED_FIELDS, "record_hash"))
    marks = ", ".join(["%s"] * (len(HASHED_FIELDS) + 1))
    row = connection.execute(
        f"INSERT INTO consent_records ({columns}) VALUES ({marks}) RETURNING id",
        [values[name] for name in HASHED_FIELDS] + [record_hash(values)],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_sealing_waits_for_ids_that_commit_out_of_order(proof_app, database_url):
    client = proof_app.test_client()
    post_choice(client)
    clock = FakeClock()
    sealer = sealing.Sealer(interval=10, grace=2, clock=clock)
    if not database_url.startswith("postgresql"):
        # SQLite gives out ids in commit order: what is visible is final, so it seals at once.
        with proof_app.app_context():
            sealer.tick("demo")
            assert chain.sealed_through("demo") == records(proof_app)[-1][0]
        return
    slow_consent = str(uuid.uuid4())
    with psycopg.connect(database_url) as slow:
        slow_id = _insert_uncommitted(slow, slow_consent)  # takes an id, commits later
        post_choice(client)
        fast_id = records(proof_app)[-1][0]
        assert fast_id > slow_id
        with proof_app.app_context():
            sealer.tick("demo")  # observes the highest visible id, seals nothing yet
            assert chain.sealed_through("demo") == 0
        slow.commit()
    clock.now += 2
    with proof_app.app_context():
        sealer.tick("demo")  # a grace period later: every id up to the observed one is final
        assert chain.sealed_through("demo") == fast_id
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 0, result.output
    assert "3 records checked, 3 sealed" in result.output


def test_sealing_without_the_grace_period_would_lose_a_late_commit(proof_app, database_url):
    """Why the grace period exists: sealing the visible ids at once misses one still being inserted."""
    client = proof_app.test_client()
    if not database_url.startswith("postgresql"):
        post_choice(client)
        with proof_app.app_context():
            assert sealing.seal("demo", sealing.read_horizon()) == 1
        return
    with psycopg.connect(database_url) as slow:
        slow_id = _insert_uncommitted(slow, str(uuid.uuid4()))
        post_choice(client)
        with proof_app.app_context():
            sealing.seal("demo", sealing.read_horizon())
        slow.commit()
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert ("inserted", slow_id) in {(kind, record_id) for kind, record_id, _ in findings(result.output)}
