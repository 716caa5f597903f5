"""A visitor's history with what they were shown, and receipts that prove what they chose."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from itsdangerous import URLSafeSerializer
from sqlalchemy import insert
from test_export import insert_records
from test_ledger import execute, post_choice, records, run

from consent.inventory import sites
from consent.models import ConsentRecord, InventoryVersion, db
from consent.recording import HASHED_FIELDS, record_hash


@pytest.fixture
def proof_app(make_app: Any) -> Flask:
    return make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)


def test_show_gives_each_choice_with_the_categories_and_cookies_shown(proof_app):
    client = proof_app.test_client()
    first = post_choice(
        client, action="accept_all", choices={"functional": True, "analytics": True, "advertising": True}
    )
    run(proof_app, "seal")
    post_choice(
        client, action="custom", choices={"analytics": True}, consent_id=first["consent_id"], receipt=first["receipt"]
    )
    (first_id, _), (second_id, _) = records(proof_app)
    result = run(proof_app, "show", "--site", "demo", first["consent_id"])
    assert result.exit_code == 0, result.output
    output = result.output
    assert f"consent ID {first['consent_id']} on site demo: 2 records" in output
    assert f"record {first_id}  {first['recorded_at']}  accept_all" in output
    assert "choices: necessary yes, functional yes, analytics yes, advertising yes" in output
    assert "choices: necessary yes, functional no, analytics yes, advertising no" in output
    with proof_app.app_context():
        current = sites()["demo"]
    assert f"shown: revision 1, inventory {current.hash} (content matches its hash)" in output
    assert "Analytics: _ga (Google Analytics, 13 months)" in output
    assert "Strictly necessary: consent (Demo Shop Ltd, 180 days), session (" in output
    assert "sealed in checkpoint 1" in output and "not sealed yet" in output
    assert output.index(f"record {first_id} ") < output.index(f"record {second_id} ")


def test_show_resolves_an_older_inventory_version_by_its_hash(proof_app):
    with proof_app.app_context():
        old = copy.deepcopy(sites()["demo"].public)
        old["revision"] = 0
        old["cookies"] = [cookie for cookie in old["cookies"] if cookie["name"] in ("consent", "_ga")]
        old["categories"][2]["label"]["nl"] = "Statistieken"
        db.session.execute(
            insert(InventoryVersion).values(
                hash="f" * 64, site="demo", revision=0, content=old, first_served_at=datetime(2025, 1, 1, tzinfo=UTC)
            )
        )
        db.session.commit()
    visitor = str(uuid.uuid4())
    insert_records(
        proof_app, [datetime(2025, 2, 1, tzinfo=UTC)], consent_id=visitor, inventory_hash="f" * 64, language="nl"
    )
    result = run(proof_app, "show", "--site", "demo", visitor)
    assert result.exit_code == 0, result.output
    # Stored under a hash that is not its content's: shown, and flagged.
    assert "shown: revision 0, inventory " + "f" * 64 + " (ALTERED: its content no longer matches" in result.output
    assert "in use since 2025-01-01T00:00:00.000Z" in result.output
    assert "Statistieken: _ga (Google Analytics, 13 maanden)" in result.output
    assert "Functioneel: none" in result.output


def test_show_as_json(proof_app):
    visitor = post_choice(proof_app.test_client(), gpc=True)
    result = run(proof_app, "show", "--site", "demo", "--json", visitor["consent_id"])
    document = json.loads(result.output)
    (record,) = document["records"]
    assert record["gpc"] is True and record["sealed_in"] is None
    assert [category["key"] for category in record["shown"]["categories"]] == [
        "necessary",
        "functional",
        "analytics",
        "advertising",
    ]


def test_show_of_an_unknown_visitor_fails(proof_app):
    result = run(proof_app, "show", "--site", "demo", str(uuid.uuid4()))
    assert result.exit_code == 1 and "no records for consent ID" in result.output


def check(app: Flask, receipt: str, site: str = "demo") -> Any:
    return app.test_client().get(f"/api/v1/sites/{site}/receipt", headers={"X-Consent-Receipt": receipt})


def test_a_receipt_proves_the_stored_choice(proof_app):
    visitor = post_choice(proof_app.test_client(), action="reject_all", choices={})
    run(proof_app, "seal")
    response = check(proof_app, visitor["receipt"])
    assert response.status_code == 200
    answer = response.json
    assert answer["status"] == "matches" and answer["sealed_in"] == 1
    assert answer["consent_id"] == visitor["consent_id"] and answer["record_id"] == records(proof_app)[0][0]
    assert answer["record"]["action"] == "reject_all" and answer["record"]["choices"]["analytics"] is False
    by_query = proof_app.test_client().get(f"/api/v1/sites/demo/receipt?receipt={visitor['receipt']}")
    assert by_query.json["status"] == "matches"
    cli = run(proof_app, "verify-receipt", "--site", "demo", visitor["receipt"])
    assert cli.exit_code == 0 and "matches, sealed in checkpoint 1" in cli.output


def test_a_receipt_reveals_a_record_changed_after_it_was_issued(proof_app):
    visitor = post_choice(proof_app.test_client(), action="reject_all", choices={})
    record_id = records(proof_app)[0][0]
    tampering = "UPDATE consent_records SET action = 'accept_all', advertising = :yes WHERE id = :id"
    execute(proof_app, tampering, yes=True, id=record_id)
    assert check(proof_app, visitor["receipt"]).json["status"] == "differs"
    cli = run(proof_app, "verify-receipt", "--site", "demo", visitor["receipt"])
    assert cli.exit_code == 1 and "differs" in cli.output


def test_a_receipt_of_an_erased_record_says_so(proof_app):
    visitor = post_choice(proof_app.test_client())
    run(proof_app, "forget", "--site", "demo", visitor["consent_id"])
    assert check(proof_app, visitor["receipt"]).json["status"] == "erased"
    execute(proof_app, "DELETE FROM ledger_checkpoints")
    assert check(proof_app, visitor["receipt"]).json["status"] == "missing"


def test_receipts_that_are_forged_missing_or_for_another_site_are_refused(proof_app):
    forged = URLSafeSerializer("not-the-key", salt="consent-receipt").dumps(["demo", str(uuid.uuid4()), 1, "0" * 64])
    response = check(proof_app, forged)
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    assert proof_app.test_client().get("/api/v1/sites/demo/receipt").status_code == 400
    assert check(proof_app, forged, site="nowhere").status_code == 404
    cli = run(proof_app, "verify-receipt", "--site", "demo", forged)
    assert cli.exit_code == 1 and "does not verify" in cli.output


def test_the_receipt_hash_is_the_record_hash(proof_app):
    """What a receipt carries is recomputable from the stored record (the service's own function)."""
    visitor = post_choice(proof_app.test_client())
    answer = check(proof_app, visitor["receipt"]).json
    with proof_app.app_context():
        record = db.session.get(ConsentRecord, answer["record_id"])
        assert record_hash({name: getattr(record, name) for name in HASHED_FIELDS}) == answer["record_hash"]
