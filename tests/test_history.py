"""A visitor's history with what they were shown, and receipts that prove what they chose."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import insert

from consent.inventory.sites import sites
from consent.ledger.canonical import ENTRY_FIELDS, record_hash
from consent.ledger.keys import generate_pem
from consent.ledger.signing import sign
from consent.store.models import ConsentRecord, InventoryVersion, db
from tests.support.consent_log import execute, insert_records, post_choice, records, run


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
    assert "sealed as leaf 0" in output and "not sealed yet" in output
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


def check(app: Flask, proof: Any, site: str = "demo") -> Any:
    return app.test_client().post(f"/api/v1/sites/{site}/receipt", json=proof)


def test_a_proof_proves_the_stored_choice(proof_app, tmp_path):
    visitor = post_choice(proof_app.test_client(), action="reject_all", choices={})
    run(proof_app, "seal")
    response = check(proof_app, visitor["proof"])
    assert response.status_code == 200
    answer = response.json
    assert answer["status"] == "matches" and answer["leaf_index"] == 0
    assert answer["consent_id"] == visitor["consent_id"] and answer["record_id"] == records(proof_app)[0][0]
    assert answer["record"]["action"] == "reject_all" and answer["record"]["choices"]["analytics"] is False
    saved = tmp_path / "proof.json"
    saved.write_text(json.dumps(visitor["proof"]))
    cli = run(proof_app, "verify-receipt", "--site", "demo", str(saved))
    assert cli.exit_code == 0 and "matches, sealed as leaf 0" in cli.output


def test_a_proof_grants_nothing(proof_app):
    """The shareable proof is not an access token: it neither reads nor writes the visitor's history."""
    client = proof_app.test_client()
    visitor = post_choice(client)
    proof_text = json.dumps(visitor["proof"])
    assert visitor["receipt"] not in proof_text
    history = client.get(
        f"/api/v1/sites/demo/consents/{visitor['consent_id']}", headers={"X-Consent-Receipt": proof_text}
    )
    assert history.status_code == 403


def test_a_proof_reveals_a_record_changed_after_it_was_issued(proof_app, tmp_path):
    visitor = post_choice(proof_app.test_client(), action="reject_all", choices={})
    record_id = records(proof_app)[0][0]
    tampering = "UPDATE consent_records SET action = 'accept_all', advertising = :yes WHERE id = :id"
    execute(proof_app, tampering, yes=True, id=record_id)
    assert check(proof_app, visitor["proof"]).json["status"] == "differs"
    saved = tmp_path / "proof.json"
    saved.write_text(json.dumps(visitor["proof"]))
    cli = run(proof_app, "verify-receipt", "--site", "demo", str(saved))
    assert cli.exit_code == 1 and "differs" in cli.output


def test_a_proof_of_an_erased_record_says_so(proof_app):
    visitor = post_choice(proof_app.test_client())
    run(proof_app, "seal")
    run(proof_app, "forget", "--site", "demo", visitor["consent_id"])
    assert check(proof_app, visitor["proof"]).json["status"] == "erased"
    execute(proof_app, "DELETE FROM ledger_events")
    assert check(proof_app, visitor["proof"]).json["status"] == "missing"


def test_proofs_that_are_forged_altered_or_for_another_site_are_refused(proof_app):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    visitor = post_choice(proof_app.test_client())
    altered = copy.deepcopy(visitor["proof"])
    altered["record"]["choices"]["advertising"] = True
    response = check(proof_app, altered)
    assert response.status_code == 403 and "signature does not verify" in response.json["error"]["message"]
    statement = {k: v for k, v in visitor["proof"]["record"].items() if k not in ("key_id", "signature")}
    forged = sign(load_pem_private_key(generate_pem(), password=None), statement)  # type: ignore[arg-type]
    assert "not one of the trusted keys" in check(proof_app, {"record": forged}).json["error"]["message"]
    assert proof_app.test_client().post("/api/v1/sites/demo/receipt", data="x").status_code == 400
    assert check(proof_app, visitor["proof"], site="nowhere").status_code == 404


def test_the_proofs_hash_is_the_record_hash(proof_app):
    """What a proof carries is recomputable from the stored record (the one canonical encoding)."""
    visitor = post_choice(proof_app.test_client())
    answer = check(proof_app, visitor["proof"]).json
    with proof_app.app_context():
        record = db.session.get(ConsentRecord, answer["record_id"])
        assert record_hash({name: getattr(record, name) for name in ENTRY_FIELDS}) == answer["record_hash"]
