"""The Merkle log: sealing under signed heads, and verify naming every record or head that does not hold.

Each attack is played as someone with write access to the database would
play it, without the signing key (or, where said, with it), on both databases.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import select

from consent.ledger import heads, sealing, seals, tree
from consent.ledger.canonical import ENTRY_FIELDS, HASHED_FIELDS, record_hash
from consent.ledger.keys import generate_pem, write_private
from consent.ledger.tiles import StoredTree
from consent.store.models import ConsentRecord, LedgerHead, LedgerSeal, db
from tests.support.consent_log import (
    execute,
    findings,
    insert_records,
    post_choice,
    records,
    run,
    sealed_log,
    stored_values,
)


def verify(app: Flask, *options: str) -> Any:
    return run(app, "verify", "--site", "demo", *options)


def newest_head(app: Flask) -> dict[str, Any]:
    with app.app_context():
        row = heads.latest("demo")
        assert row is not None
        return heads.as_json(row)


def rebuild_ledger(app: Flask) -> None:
    """An insider with the signing key throws the ledger away and seals the records as they are now."""
    execute(app, "DELETE FROM ledger_heads")
    execute(app, "DELETE FROM ledger_tiles")
    execute(app, "DELETE FROM ledger_seals")
    assert run(app, "seal").exit_code == 0


def witness_store(path: Path, *seen: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(head) + "\n" for head in seen))
    return path


def test_an_untouched_sealed_log_verifies(proof_app):
    log = sealed_log(proof_app, 3)
    result = verify(proof_app)
    assert result.exit_code == 0, result.output
    assert "demo: intact; 3 records checked, 3 sealed under signed heads" in result.output
    head = newest_head(proof_app)
    assert head["tree_size"] == 3
    assert f"newest head: 3 leaves, root {head['root_hash']}" in result.output
    assert f"ids up to {log[-1][0]}" in run(proof_app, "seal").output


def test_the_signed_root_is_the_rfc_9162_root_of_the_record_hashes(proof_app):
    """An outsider recomputes the root from the records' contents alone: each leaf is the record's hash."""
    sealed_log(proof_app, 5)
    leaves = [bytes.fromhex(record_hash(stored_values(proof_app, record_id))) for record_id, _ in records(proof_app)]
    assert newest_head(proof_app)["root_hash"] == tree.root(leaves).hex()


def test_verify_names_a_changed_record(proof_app):
    log = sealed_log(proof_app, 3)
    record_id, consent_id = log[1]
    execute(proof_app, "UPDATE consent_records SET advertising = :granted WHERE id = :id", granted=True, id=record_id)
    result = verify(proof_app)
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
    result = verify(proof_app)
    assert result.exit_code == 1
    assert findings(result.output) == {("changed", record_id, consent_id)}
    assert "differs from the record that was sealed" in result.output


def test_a_changed_leaf_no_longer_gives_the_signed_root(proof_app):
    """Record, its hash and its stored leaf all changed: the signed head no longer matches the leaves."""
    log = sealed_log(proof_app, 3)
    record_id, _ = log[1]
    values = stored_values(proof_app, record_id) | {"advertising": True}
    digest = record_hash(values)
    execute(proof_app, "UPDATE consent_records SET advertising = :g, record_hash = :d WHERE id = :id",
            g=True, d=digest, id=record_id)  # fmt: skip
    with proof_app.app_context():
        row = db.session.scalars(select(LedgerSeal)).one()
        leaves = bytearray(row.leaves)
        leaves[56 + 24 : 56 + 56] = bytes.fromhex(digest)
        row.leaves = bytes(leaves)
        db.session.commit()
    result = verify(proof_app)
    assert result.exit_code == 1
    assert "does not match the leaves: the log was rewritten behind it" in result.output
    assert "3 under seals no head vouches for" in result.output


def test_verify_names_a_removed_record_and_its_consent_id(proof_app):
    log = sealed_log(proof_app, 3)
    record_id, consent_id = log[2]
    execute(proof_app, "DELETE FROM consent_records WHERE id = :id", id=record_id)
    result = verify(proof_app)
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
        "event_id": str(uuid.uuid4()),
        "consent_id": str(uuid.uuid4()),
    }
    names = ("id", "event_id", *ENTRY_FIELDS, "record_hash")
    execute(
        proof_app,
        f"INSERT INTO consent_records ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})",
        id=gap,
        **forged,
        record_hash=record_hash(forged),
    )
    result = verify(proof_app)
    assert result.exit_code == 1
    assert findings(result.output) == {("inserted", gap, forged["consent_id"])}


def test_verify_names_records_whose_order_was_swapped(proof_app):
    log = sealed_log(proof_app, 4)
    (first, first_consent), (second, second_consent) = log[1], log[2]
    execute(proof_app, "UPDATE consent_records SET id = -1 WHERE id = :id", id=first)
    execute(proof_app, "UPDATE consent_records SET id = :new WHERE id = :old", new=first, old=second)
    execute(proof_app, "UPDATE consent_records SET id = :new WHERE id = -1", new=second)
    result = verify(proof_app)
    assert result.exit_code == 1
    assert findings(result.output) == {("reordered", first, second_consent), ("reordered", second, first_consent)}
    assert f"holds the record sealed as record {second}" in result.output


def test_verify_lists_every_tampered_record_at_once(proof_app):
    log = sealed_log(proof_app, 6)
    execute(proof_app, "UPDATE consent_records SET language = 'nl' WHERE id = :id", id=log[0][0])
    execute(proof_app, "DELETE FROM consent_records WHERE id IN (:a, :b)", a=log[2][0], b=log[4][0])
    result = verify(proof_app)
    assert result.exit_code == 1
    assert findings(result.output) == {("changed", *log[0]), ("removed", *log[2]), ("removed", *log[4])}
    assert "NOT INTACT: 3 problems" in result.output


def test_records_not_sealed_yet_are_counted_not_proven(proof_app):
    sealed_log(proof_app, 2)
    post_choice(proof_app.test_client())
    result = verify(proof_app)
    assert result.exit_code == 0, result.output
    assert "3 records checked, 2 sealed under signed heads; 1 not sealed yet" in result.output


@pytest.mark.parametrize("also", ["", "edit", "delete"])
def test_deleting_the_ledger_never_reads_as_intact(proof_app, also):
    log = sealed_log(proof_app, 3)
    if also == "edit":
        execute(proof_app, "UPDATE consent_records SET analytics = :g WHERE id = :id", g=True, id=log[0][0])
    elif also == "delete":
        execute(proof_app, "DELETE FROM consent_records WHERE id = :id", id=log[1][0])
    for table in ("ledger_heads", "ledger_tiles", "ledger_seals"):
        execute(proof_app, f"DELETE FROM {table}")
    result = verify(proof_app)
    assert result.exit_code == 1
    assert "the site has records but no signed tree head" in result.output
    assert "intact;" not in result.output


def test_deleting_only_the_heads_leaves_the_seals_unvouched(proof_app):
    sealed_log(proof_app, 3)
    execute(proof_app, "DELETE FROM ledger_heads")
    result = verify(proof_app)
    assert result.exit_code == 1
    assert "seal 1 (leaves 0..2) is under no signed head" in result.output


def test_a_removed_seal_is_detected(proof_app, monkeypatch):
    monkeypatch.setattr(sealing, "MAX_LEAVES", 2)
    log = sealed_log(proof_app, 6)
    execute(proof_app, "DELETE FROM ledger_seals WHERE seq = 2")
    result = verify(proof_app)
    assert result.exit_code == 1
    assert "seal 3 starts at leaf 4, but the seals before end at 2" in result.output
    assert {("inserted", *log[2]), ("inserted", *log[3])} <= findings(result.output)


def test_a_backdated_insert_is_named(proof_app):
    sealed_log(proof_app, 2)
    [backdated] = insert_records(proof_app, [datetime.now(UTC) - timedelta(hours=3)])
    assert run(proof_app, "seal").exit_code == 0
    result = verify(proof_app)
    assert result.exit_code == 1
    assert "backdated  record " + str(backdated) in result.output
    assert "that left it out" in result.output


def test_an_old_record_the_sealer_never_took_is_named_unsealed(proof_app):
    sealed_log(proof_app, 2)
    [late] = insert_records(proof_app, [datetime.now(UTC) - timedelta(hours=2)])
    result = verify(proof_app)
    assert result.exit_code == 1
    assert f"unsealed   record {late}" in result.output
    assert "still not sealed" in result.output


def test_how_long_a_record_may_wait_to_be_sealed_is_configurable(make_app):
    app = make_app(SEAL_INTERVAL=0, SEAL_GRACE=0, SEAL_MAX_DELAY=30)
    sealed_log(app, 1)
    [late] = insert_records(app, [datetime.now(UTC) - timedelta(minutes=1)])
    assert f"unsealed   record {late}" in verify(app).output
    relaxed = make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)  # sealed from cron: an hour by default
    assert verify(relaxed).exit_code == 0


def test_a_head_altered_without_the_key_is_detected(proof_app):
    sealed_log(proof_app, 3)
    execute(proof_app, "UPDATE ledger_heads SET root_hash = :root", root="ab" * 32)
    result = verify(proof_app)
    assert result.exit_code == 1
    assert "head of size 3: its signature does not verify: forged or altered" in result.output


def test_a_head_signed_with_a_key_of_the_forgers_own_is_detected(proof_app, make_app, tmp_path):
    sealed_log(proof_app, 2)
    foreign = tmp_path / "foreign.pem"
    write_private(foreign, generate_pem())
    forger = make_app(SEAL_INTERVAL=0, SEAL_GRACE=0, LEDGER_KEY_FILE=str(foreign))
    post_choice(forger.test_client())
    assert run(forger, "seal").exit_code == 0
    result = verify(proof_app)
    assert result.exit_code == 1
    assert "head of size 3: signed by key" in result.output and "not one of the trusted keys" in result.output
    assert "seal 2 (leaves 2..2) is under no signed head" in result.output


def test_after_a_rotation_old_heads_verify_and_a_retired_key_cannot_sign_new_ones(make_app, tmp_path):
    old = make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)
    sealed_log(old, 2)
    retired = tmp_path / "retired-keys.json"
    assert run(old, "keys", "retire", "--into", str(retired), "--minutes", "0").exit_code == 0
    new_key = tmp_path / "new.pem"
    assert run(old, "keys", "generate", "-o", str(new_key)).exit_code == 0
    new = make_app(SEAL_INTERVAL=0, SEAL_GRACE=0, LEDGER_KEY_FILE=str(new_key), LEDGER_RETIRED_KEYS=str(retired))
    sealed_log(new, 2)
    result = verify(new)
    assert result.exit_code == 0, result.output
    published = json.loads(run(new, "keys", "show").output)["keys"]
    assert [key["status"] for key in published] == ["current", "retired"]
    time.sleep(1.1)  # past the retired key's end of validity
    # Someone holding the retired key signs a new head with it.
    sealed_log(old, 1)
    result = verify(new)
    assert result.exit_code == 1
    assert "outside that key's validity (a retired key?)" in result.output


def test_a_rewrite_by_someone_with_the_key_is_caught_by_a_witnessed_head(proof_app, tmp_path):
    log = sealed_log(proof_app, 4)
    store = witness_store(tmp_path / "witness.jsonl", newest_head(proof_app))
    record_id, consent_id = log[1]
    values = stored_values(proof_app, record_id) | {"advertising": True}
    execute(proof_app, "UPDATE consent_records SET advertising = :g, record_hash = :d WHERE id = :id",
            g=True, d=record_hash(values), id=record_id)  # fmt: skip
    rebuild_ledger(proof_app)
    assert verify(proof_app).exit_code == 0  # alone, a log re-signed with the key cannot tell
    result = verify(proof_app, "--witness", str(store))
    assert result.exit_code == 1
    assert "witnessed head" in result.output and "does not match the leaves" in result.output


def test_truncation_behind_a_witnessed_head_is_caught(proof_app, tmp_path):
    log = sealed_log(proof_app, 5)
    store = witness_store(tmp_path / "witness.jsonl", newest_head(proof_app))
    execute(proof_app, "DELETE FROM consent_records WHERE id >= :id", id=log[3][0])
    rebuild_ledger(proof_app)
    result = verify(proof_app, "--witness", str(store))
    assert result.exit_code == 1
    assert "covers 5 leaves, but the log holds 3: records were removed (a truncation or a rollback)" in result.output


def test_a_receipts_head_is_a_witness_too(proof_app, tmp_path):
    client = proof_app.test_client()
    sealed_log(proof_app, 3)
    answer = post_choice(client)
    assert answer["proof"]["head"]["tree_size"] == 3
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(answer["proof"]))
    execute(proof_app, "DELETE FROM consent_records")
    execute(proof_app, "DELETE FROM ledger_heads")
    execute(proof_app, "DELETE FROM ledger_tiles")
    execute(proof_app, "DELETE FROM ledger_seals")
    result = verify(proof_app, "--witness", str(proof))
    assert result.exit_code == 1
    assert "covers 3 leaves, but the log holds 0" in result.output


def test_choices_are_sealed_on_the_write_path_within_the_interval(make_app):
    app = make_app(SEAL_INTERVAL=0.2, SEAL_GRACE=0.1)
    client = app.test_client()
    first = post_choice(client)
    for _ in range(50):
        post_choice(client)
        with app.app_context():
            if seals.sealed_through("demo") >= 1:
                break
        time.sleep(0.05)
    with app.app_context():
        assert seals.sealed_through("demo") >= 1
    assert first["consent_id"] in {consent for _, consent in records(app)}
    assert verify(app).exit_code == 0


def test_tiles_give_the_same_root_as_the_leaves(proof_app, monkeypatch):
    """Proofs read the tiles; they must agree with the tree recomputed from the leaves at every size."""
    monkeypatch.setattr(sealing, "MAX_LEAVES", 97)
    insert_records(proof_app, [datetime.now(UTC)] * 602)
    assert run(proof_app, "seal").exit_code == 0
    with proof_app.app_context():
        leaves = [
            bytes.fromhex(digest)
            for digest in db.session.scalars(select(ConsentRecord.record_hash).order_by(ConsentRecord.id))
        ]
        stored = StoredTree("demo")
        for size in (1, 97, 255, 256, 257, 511, 512, 513, 600, 602):
            assert stored.root(size) == tree.root(leaves[:size]), size
        signed = {row.tree_size: row.root_hash for row in db.session.scalars(select(LedgerHead))}
    assert list(signed) == [602]  # seven seals of up to 97 leaves in one pass, one head
    assert all(root == tree.root(leaves[:size]).hex() for size, root in signed.items())


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
        assert seals.tree_size("demo") == 30
    assert verify(proof_app).exit_code == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _insert_uncommitted(connection: psycopg.Connection, consent_id: str) -> int:
    """A record inserted in a transaction the caller has not committed yet."""
    now = datetime.now(UTC).replace(microsecond=0)
    values = {
        "site": "demo", "event_id": str(uuid.uuid4()), "consent_id": consent_id, "recorded_at": now,
        "action": "reject_all", "necessary": True, "functional": False, "analytics": False, "advertising": False,
        "revision": 1, "inventory_hash": "0" * 64, "language": "en", "page_url": "https://shop.example/",
        "ip": "192.0.2.0", "user_agent": "slow", "gpc": False, "dnt": False,
    }  # fmt: skip
    names = ("event_id", *HASHED_FIELDS)
    row = connection.execute(
        f"INSERT INTO consent_records ({', '.join(names)}, record_hash) "
        f"VALUES ({', '.join(['%s'] * (len(names) + 1))}) RETURNING id",
        [values[name] for name in names] + [record_hash(values)],
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
            assert seals.sealed_through("demo") == records(proof_app)[-1][0]
        return
    with psycopg.connect(database_url) as slow:
        slow_id = _insert_uncommitted(slow, str(uuid.uuid4()))  # takes an id, commits later
        post_choice(client)
        fast_id = records(proof_app)[-1][0]
        assert fast_id > slow_id
        with proof_app.app_context():
            sealer.tick("demo")  # observes the highest visible id, seals nothing yet
            assert seals.sealed_through("demo") == 0
        slow.commit()
    clock.now += 2
    with proof_app.app_context():
        sealer.tick("demo")  # a grace period later: every id up to the observed one is final
        assert seals.sealed_through("demo") == fast_id
    result = verify(proof_app)
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
    result = verify(proof_app)
    assert result.exit_code == 1
    assert ("inserted", slow_id) in {(kind, record_id) for kind, record_id, _ in findings(result.output)}
