"""Purge and erasure: each a signed ledger event, after which what remains still verifies."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, insert, select

from consent.ledger import events, heads, sealing, seals
from consent.ledger.leaves import subject
from consent.log.partitions import month_partitions
from consent.store.models import ConsentEventKey, ConsentRecord, LedgerEvent, LedgerSeal, db
from tests.support.consent_log import choice, execute, findings, insert_records, post_choice, records, run, send

LONG_AGO = datetime.now(UTC) - timedelta(days=2000)  # the demo site keeps records 1825 days


def old_and_new(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Three expired records and two recent ones, sealed two to a seal."""
    monkeypatch.setattr(sealing, "MAX_LEAVES", 2)
    insert_records(app, [LONG_AGO + timedelta(minutes=minute) for minute in range(3)])
    client = app.test_client()
    post_choice(client)
    post_choice(client)
    assert run(app, "seal").exit_code == 0
    return records(app)


def signed_erasures(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        return events.erasures("demo")


def test_a_dry_run_counts_and_deletes_nothing(proof_app, monkeypatch):
    log = old_and_new(proof_app, monkeypatch)
    result = run(proof_app, "purge", "--dry-run")
    assert result.exit_code == 0
    assert "demo: would purge 3 records recorded before" in result.output and "(retention 1825 days)" in result.output
    assert records(proof_app) == log
    assert signed_erasures(proof_app) == []


def test_purge_deletes_expired_records_and_what_remains_verifies(proof_app, monkeypatch):
    log = old_and_new(proof_app, monkeypatch)
    with proof_app.app_context():
        root_before = heads.latest("demo").root_hash  # type: ignore[union-attr]
    result = run(proof_app, "purge", "--site", "demo")
    assert result.exit_code == 0, result.output
    assert "demo: purged 3 records" in result.output and "signed as an erasure in the ledger" in result.output
    assert records(proof_app) == log[3:]
    [purge] = signed_erasures(proof_app)
    assert purge["kind"] == "purge" and purge["records"] == 3 and purge["leaves"] == [[0, 3]]
    with proof_app.app_context():
        # The leaves stay: every head still verifies, and the purged leaves stay provable.
        assert heads.latest("demo").root_hash == root_before  # type: ignore[union-attr]
        assert seals.tree_size("demo") == 5
    verified = run(proof_app, "verify", "--site", "demo")
    assert verified.exit_code == 0, verified.output
    assert "2 records checked, 2 sealed" in verified.output and "3 purged" in verified.output
    assert run(proof_app, "purge").output.startswith("demo: purged 0 records")


def test_removing_the_purge_event_is_detected(proof_app, monkeypatch):
    log = old_and_new(proof_app, monkeypatch)
    run(proof_app, "purge")
    execute(proof_app, "DELETE FROM ledger_events")
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    # Removed, named by record id; the purge blanked their consent IDs from the ledger.
    assert {("removed", record_id, "unknown") for record_id, _ in log[:3]} <= findings(result.output)


def test_a_purge_forged_without_the_key_does_not_excuse_a_deletion(proof_app, monkeypatch):
    log = old_and_new(proof_app, monkeypatch)
    run(proof_app, "purge")
    execute(proof_app, "DELETE FROM consent_records WHERE id = :id", id=log[3][0])
    # The forger widens the purge to cover the record they deleted, without the key to sign it again.
    with proof_app.app_context():
        event = db.session.scalars(select(LedgerEvent)).one()
        signed = json.loads(event.signed)
        signed["leaves"] = [[0, 4]]
        event.signed = json.dumps(signed)
        db.session.commit()
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert "its signature does not verify" in result.output
    assert ("removed", *log[3]) in findings(result.output)


def test_forget_erases_a_visitor_leaving_a_signed_erasure_that_verifies(proof_app):
    client = proof_app.test_client()
    first = post_choice(client)
    post_choice(client, action="withdraw", choices={}, consent_id=first["consent_id"], receipt=first["receipt"])
    other = post_choice(client)
    run(proof_app, "seal")
    result = run(proof_app, "forget", "--site", "demo", first["consent_id"])
    assert result.exit_code == 0, result.output
    assert f"demo: erased 2 records of consent ID {first['consent_id']}; signed as an erasure" in result.output
    assert [consent_id for _, consent_id in records(proof_app)] == [other["consent_id"]]
    with proof_app.app_context():
        [seal] = db.session.scalars(select(LedgerSeal)).all()
        labels, leaves = bytes(seal.labels), bytes(seal.leaves)
    assert uuid.UUID(first["consent_id"]).bytes not in labels  # the ledger no longer names them
    assert subject(first["consent_id"]) not in leaves
    assert uuid.UUID(other["consent_id"]).bytes in labels
    [erasure] = signed_erasures(proof_app)
    assert erasure["kind"] == "forget" and erasure["records"] == 2 and erasure["leaves"] == [[0, 2]]
    verified = run(proof_app, "verify", "--site", "demo")
    assert verified.exit_code == 0, verified.output
    assert "1 records checked, 1 sealed" in verified.output and "2 erased" in verified.output
    again = run(proof_app, "forget", "--site", "demo", first["consent_id"])
    assert again.exit_code == 0 and "was erased before (2 records)" in again.output


def test_forget_of_an_unknown_visitor_fails(proof_app):
    result = run(proof_app, "forget", "--site", "demo", str(uuid.uuid4()))
    assert result.exit_code == 1
    assert "no records for consent ID" in result.output


def test_an_erasure_excuses_only_the_erased_records(proof_app):
    client = proof_app.test_client()
    gone, kept = post_choice(client), post_choice(client)
    unsealed = post_choice(client)
    run(proof_app, "seal")
    assert run(proof_app, "forget", "--site", "demo", unsealed["consent_id"]).exit_code == 0
    assert run(proof_app, "forget", "--site", "demo", gone["consent_id"]).exit_code == 0
    assert [consent_id for _, consent_id in records(proof_app)] == [kept["consent_id"]]
    execute(proof_app, "DELETE FROM consent_records WHERE consent_id = :id", id=kept["consent_id"])
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert {(kind, consent) for kind, _, consent in findings(result.output)} == {("removed", kept["consent_id"])}


def test_records_erased_before_they_were_sealed_verify(proof_app):
    client = proof_app.test_client()
    visitor = post_choice(client)
    post_choice(client)
    assert run(proof_app, "forget", "--site", "demo", visitor["consent_id"]).exit_code == 0
    run(proof_app, "seal")
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 0, result.output
    # The tree never held the erased record, so there is no absence to excuse.
    assert "1 records checked, 1 sealed under signed heads; 0 not sealed yet, 0 erased" in result.output


def test_sqlite_never_gives_an_erased_records_id_again(make_app, database_url):
    app = make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)
    client = app.test_client()
    post_choice(client)
    newest = post_choice(client)
    erased_id = records(app)[-1][0]
    run(app, "seal")
    assert run(app, "forget", "--site", "demo", newest["consent_id"]).exit_code == 0
    post_choice(client)
    assert records(app)[-1][0] > erased_id
    run(app, "seal")
    result = run(app, "verify", "--site", "demo")
    assert result.exit_code == 0, result.output


PARTITIONED = """
ALTER TABLE consent_records RENAME TO consent_records_unpartitioned;
CREATE TABLE consent_records (LIKE consent_records_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (recorded_at);
ALTER TABLE consent_records ADD CONSTRAINT pk_consent_records_partitioned PRIMARY KEY (id, recorded_at);
CREATE INDEX ix_consent_records_site_consent_id_p ON consent_records (site, consent_id);
CREATE INDEX ix_consent_records_site_recorded_at_p ON consent_records (site, recorded_at);
CREATE INDEX ix_consent_records_site_event_id_p ON consent_records (site, event_id);
CREATE TABLE consent_records_default PARTITION OF consent_records DEFAULT;
INSERT INTO consent_records SELECT * FROM consent_records_unpartitioned;
INSERT INTO consent_event_keys (site, event_id, recorded_at) SELECT site, event_id, recorded_at FROM consent_records;
ALTER SEQUENCE consent_records_id_seq OWNED BY consent_records.id;
DROP TABLE consent_records_unpartitioned;
"""


def _month(connection: psycopg.Connection, start: datetime) -> None:
    end = (start + timedelta(days=32)).replace(day=1)
    name = f"consent_records_{start:%Y_%m}"
    connection.execute(
        f"CREATE TABLE {name} PARTITION OF consent_records FOR VALUES FROM ('{start:%Y-%m-%d}') TO ('{end:%Y-%m-%d}')"
    )


ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def partitioned(make_app: Any, database_url: str) -> Iterator[tuple[Flask, str]]:
    """An app on a fresh PostgreSQL schema whose log is partitioned by month: (app, its URL)."""
    schema = f"consent_part_{uuid.uuid4().hex[:10]}"
    base = database_url.split("?")[0]
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = f"{base}?options=-csearch_path%3D{schema}"
        app = make_app(DATABASE_URL=url, SEAL_INTERVAL=0, SEAL_GRACE=0)
        with app.app_context():
            upgrade()
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(PARTITIONED)
        yield app, url
        with app.app_context():
            db.engine.dispose()
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_logs_have_no_partitions(make_app):
    with make_app(SEAL_INTERVAL=0).app_context():
        assert month_partitions() == []  # SQLite: purges delete rows


@ON_POSTGRESQL
def test_purge_drops_whole_month_partitions(partitioned):
    app, url = partitioned
    old = LONG_AGO.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(url, autocommit=True) as connection:
        _month(connection, old)
    insert_records(app, [old + timedelta(days=day) for day in (1, 2, 3)])
    insert_records(app, [datetime.now(UTC) - timedelta(days=1)])
    run(app, "seal")
    result = run(app, "purge")
    assert result.exit_code == 0, result.output
    assert "purged 3 records" in result.output and "1 partitions dropped" in result.output
    with app.app_context():
        assert [name for name, _, _ in month_partitions()] == []
        assert db.session.scalars(select(ConsentRecord.id)).all() == [4]
        assert [event["kind"] for event in events.erasures("demo")] == ["purge"]
    verified = run(app, "verify", "--site", "demo")
    assert verified.exit_code == 0, verified.output


@ON_POSTGRESQL
def test_a_partitioned_log_records_through_the_api_once_per_event(partitioned):
    app, _ = partitioned
    client = app.test_client()
    body = choice()
    first = send(client, body)
    assert first.status_code == 201
    replay = send(client, body)
    assert replay.status_code == 200 and replay.json == first.json
    # Racing replays of a new event: one record, one answer.
    racing = {
        "event_id": str(uuid.uuid4()),
        "action": "reject_all",
        "choices": {},
        "revision": 1,
        "page_url": "https://shop.example/",
    }
    answers: list[tuple[int, str]] = []
    start = threading.Barrier(6)

    def post() -> None:
        start.wait(timeout=10)
        response = app.test_client().post(
            "/api/v1/sites/demo/consents", json=racing, headers={"Origin": "http://localhost:8000"}
        )
        answers.append((response.status_code, json.dumps(response.json, sort_keys=True)))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(status for status, _ in answers) == [200] * 5 + [201]
    assert len({body for _, body in answers}) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ConsentRecord)) == 2
        assert db.session.scalar(select(func.count()).select_from(ConsentEventKey)) == 2
    # Sealed and verified like any other log.
    assert run(app, "seal").exit_code == 0
    verified = run(app, "verify", "--site", "demo")
    assert verified.exit_code == 0, verified.output
    # An erasure takes the visitor's keys too: a late replay is recorded again, as on any log.
    assert run(app, "forget", "--site", "demo", first.json["consent_id"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ConsentEventKey)) == 1
    again = send(app.test_client(), body)
    assert again.status_code == 201 and again.json["consent_id"] != first.json["consent_id"]


@ON_POSTGRESQL
def test_a_purge_drops_the_expired_idempotency_keys_too(partitioned):
    app, _ = partitioned
    insert_records(app, [LONG_AGO, datetime.now(UTC) - timedelta(days=1)])
    with app.app_context():
        # insert_records writes rows directly; give them their keys as recording would.
        db.session.execute(
            insert(ConsentEventKey).from_select(
                ["site", "event_id", "recorded_at"],
                select(ConsentRecord.site, ConsentRecord.event_id, ConsentRecord.recorded_at),
            )
        )
        db.session.commit()
    assert run(app, "purge").exit_code == 0
    with app.app_context():
        kept = db.session.execute(select(ConsentEventKey.event_id)).scalars().all()
        assert kept == db.session.execute(select(ConsentRecord.event_id)).scalars().all()
        assert len(kept) == 1
