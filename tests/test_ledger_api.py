"""The ledger's routes as an outsider uses them: heads checked with the published keys, proofs checked independently."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from consent.ledger import sealing, tree
from consent.ledger.signing import TREE_HEAD, check, parse_keys
from consent.store.models import ConsentRecord, db

ORIGIN = {"Origin": "http://localhost:8000"}
BASE = "/api/v1/sites/demo/ledger"


@pytest.fixture
def ledger_app(make_app: Any) -> Flask:
    """Sealing only when a test asks, with no grace period."""
    return make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)


@pytest.fixture
def ledger_client(ledger_app: Flask) -> FlaskClient:
    return ledger_app.test_client()


def post_choice(client: FlaskClient, **changes: Any) -> dict[str, Any]:
    body = {
        "event_id": str(uuid.uuid4()),
        "action": "accept_all",
        "choices": {"functional": True, "analytics": True, "advertising": True},
        "revision": 1,
        "page_url": "https://shop.example/",
        **changes,
    }
    response = client.post("/api/v1/sites/demo/consents", json=body, headers=ORIGIN)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def seal(app: Flask) -> None:
    with app.app_context():
        sealing.seal("demo", sealing.read_horizon())


def grow(app: Flask, client: FlaskClient, batches: list[int]) -> list[dict[str, Any]]:
    """Record and seal ``batches`` choices at a time; the POST answers, in order."""
    answers = []
    for count in batches:
        answers += [post_choice(client) for _ in range(count)]
        seal(app)
    return answers


def leaves(answers: list[dict[str, Any]]) -> list[bytes]:
    """The leaf hashes as the visitors' signed proofs state them: the outsider's own copy of the tree."""
    return [bytes.fromhex(answer["proof"]["record"]["record_hash"]) for answer in answers]


def published_keys(client: FlaskClient) -> dict[str, Any]:
    return parse_keys(client.get("/api/v1/ledger/keys").get_json())


def test_head_is_signed_with_a_published_key_and_matches_the_leaves(
    ledger_app: Flask, ledger_client: FlaskClient
) -> None:
    answers = grow(ledger_app, ledger_client, [3, 2])
    response = ledger_client.get(f"{BASE}/head")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=5"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    head = response.get_json()
    assert check(head, published_keys(ledger_client), TREE_HEAD) is None
    assert head["site"] == "demo" and head["tree_size"] == 5
    assert head["root_hash"] == tree.root(leaves(answers)).hex()


def test_an_altered_head_does_not_verify(ledger_app: Flask, ledger_client: FlaskClient) -> None:
    grow(ledger_app, ledger_client, [2])
    head = ledger_client.get(f"{BASE}/head").get_json()
    keys = published_keys(ledger_client)
    assert check({**head, "tree_size": 1}, keys, TREE_HEAD) is not None
    assert check({**head, "root_hash": "00" * 32}, keys, TREE_HEAD) is not None


def test_no_head_yet_and_unknown_site_are_404(ledger_client: FlaskClient) -> None:
    response = ledger_client.get(f"{BASE}/head")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert ledger_client.get("/api/v1/sites/nope/ledger/head").status_code == 404
    assert ledger_client.get("/api/v1/sites/nope/ledger/consistency?from=0").status_code == 404
    assert ledger_client.get("/api/v1/sites/nope/ledger/inclusion?record=1").status_code == 404


def test_consistency_proofs_between_many_sizes_verify_independently(
    ledger_app: Flask, ledger_client: FlaskClient
) -> None:
    answers = grow(ledger_app, ledger_client, [1, 2, 5, 1, 8, 3])
    hashes = leaves(answers)
    size = len(hashes)
    for first in range(size + 1):
        for second in range(first, size + 1):
            response = ledger_client.get(f"{BASE}/consistency?from={first}&to={second}")
            assert response.status_code == 200
            body = response.get_json()
            assert (body["from"], body["to"]) == (first, second)
            proof = [bytes.fromhex(value) for value in body["proof"]]
            first_root, second_root = tree.root(hashes[:first]), tree.root(hashes[:second])
            assert tree.verify_consistency(first, second, first_root, second_root, proof), (first, second)
            if first < second and first:
                # The same proof does not vouch for a different history.
                assert not tree.verify_consistency(first, second, bytes(32), second_root, proof)


def test_consistency_names_the_heads_at_both_sizes_and_defaults_to_the_newest(
    ledger_app: Flask, ledger_client: FlaskClient
) -> None:
    grow(ledger_app, ledger_client, [2, 3])
    body = ledger_client.get(f"{BASE}/consistency?from=2").get_json()
    assert body["to"] == 5
    keys = published_keys(ledger_client)
    assert check(body["from_head"], keys, TREE_HEAD) is None and body["from_head"]["tree_size"] == 2
    assert check(body["to_head"], keys, TREE_HEAD) is None and body["to_head"]["tree_size"] == 5
    other = ledger_client.get(f"{BASE}/consistency?from=1&to=3").get_json()
    assert other["from_head"] is None and other["to_head"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "from"),
        ("from=x", "from"),
        ("from=-1", "from"),
        ("from=1.5", "from"),
        ("from=3&to=2", "from"),
        ("from=0&to=6", "to"),
        ("from=0&to=y", "to"),
    ],
)
def test_bad_sizes_are_422_with_field_errors(
    ledger_app: Flask, ledger_client: FlaskClient, query: str, field: str
) -> None:
    grow(ledger_app, ledger_client, [5])
    response = ledger_client.get(f"{BASE}/consistency?{query}")
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_inclusion_proof_with_the_visitors_token_verifies_against_the_head(
    ledger_app: Flask, ledger_client: FlaskClient
) -> None:
    answers = grow(ledger_app, ledger_client, [4, 3, 6])
    keys = published_keys(ledger_client)
    for index, answer in enumerate(answers):
        record = answer["proof"]["record"]
        response = ledger_client.get(
            f"{BASE}/inclusion?record={record['record_id']}", headers={**ORIGIN, "X-Consent-Receipt": answer["receipt"]}
        )
        assert response.status_code == 200, response.get_json()
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN["Origin"]
        body = response.get_json()
        head = body["head"]
        assert check(head, keys, TREE_HEAD) is None
        assert (body["leaf_index"], body["tree_size"]) == (index, head["tree_size"])
        assert body["leaf_hash"] == record["record_hash"]
        path = [bytes.fromhex(value) for value in body["proof"]]
        root = bytes.fromhex(head["root_hash"])
        assert tree.verify_inclusion(index, head["tree_size"], bytes.fromhex(record["record_hash"]), path, root)
        assert not tree.verify_inclusion(index, head["tree_size"], bytes(32), path, root)


def test_inclusion_for_an_admin(ledger_app: Flask, ledger_client: FlaskClient, admin_headers: dict[str, str]) -> None:
    answers = grow(ledger_app, ledger_client, [3])
    record_id = answers[1]["proof"]["record"]["record_id"]
    response = ledger_client.get(f"{BASE}/inclusion?record={record_id}", headers=admin_headers)
    assert response.status_code == 200
    assert response.get_json()["leaf_index"] == 1
    assert ledger_client.get(f"{BASE}/inclusion?record=999999", headers=admin_headers).status_code == 404


def test_inclusion_is_refused_without_a_token_or_with_another_visitors(
    ledger_app: Flask, ledger_client: FlaskClient
) -> None:
    mine, theirs = grow(ledger_app, ledger_client, [2])
    record_id = mine["proof"]["record"]["record_id"]
    url = f"{BASE}/inclusion?record={record_id}"
    for headers in ({}, {"X-Consent-Receipt": theirs["receipt"]}, {"X-Consent-Receipt": "forged.token"}):
        response = ledger_client.get(url, headers={**ORIGIN, **headers})
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"
        assert "proof" not in response.get_json()
    # Not even whether a record exists is told to a stranger.
    response = ledger_client.get(
        f"{BASE}/inclusion?record=999999", headers={**ORIGIN, "X-Consent-Receipt": theirs["receipt"]}
    )
    assert response.status_code == 403
    foreign = ledger_client.get(url, headers={"Origin": "https://evil.example", "X-Consent-Receipt": mine["receipt"]})
    assert foreign.status_code == 403


def test_an_unsealed_record_is_404(ledger_app: Flask, ledger_client: FlaskClient) -> None:
    grow(ledger_app, ledger_client, [1])
    answer = post_choice(ledger_client)
    record_id = answer["proof"]["record"]["record_id"]
    response = ledger_client.get(
        f"{BASE}/inclusion?record={record_id}", headers={**ORIGIN, "X-Consent-Receipt": answer["receipt"]}
    )
    assert response.status_code == 404
    assert "not sealed" in response.get_json()["error"]["message"]


def test_inclusion_preflight_allows_the_receipt_header_for_declared_origins(ledger_client: FlaskClient) -> None:
    response = ledger_client.options(
        f"{BASE}/inclusion?record=1",
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-Consent-Receipt",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN["Origin"]
    assert "X-Consent-Receipt" in response.headers["Access-Control-Allow-Headers"]
    refused = ledger_client.options(f"{BASE}/inclusion?record=1", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403


@pytest.mark.parametrize("key_id", [{}, [], 7, None, "0" * 16])
def test_a_proof_with_a_strange_key_id_is_refused_not_a_server_error(ledger_client: FlaskClient, key_id: Any) -> None:
    answer = post_choice(ledger_client)
    record = {**answer["proof"]["record"], "key_id": key_id}
    response = ledger_client.post("/api/v1/sites/demo/receipt", json={"record": record, "head": None})
    assert response.status_code == 403
    assert "trusted keys" in response.get_json()["error"]["message"]


def test_the_receipt_route_checks_a_downloaded_proof(ledger_app: Flask, ledger_client: FlaskClient) -> None:
    (answer,) = grow(ledger_app, ledger_client, [1])
    response = ledger_client.post("/api/v1/sites/demo/receipt", json=answer["proof"])
    assert response.status_code == 200
    assert response.get_json()["status"] == "matches" and response.get_json()["leaf_index"] == 0


def test_inclusion_when_other_sites_records_come_between(ledger_app: Flask, ledger_client: FlaskClient) -> None:
    # 300 ids of another site between two of this site's records: the leaf is a whole block before its id suggests.
    early = [post_choice(ledger_client) for _ in range(10)]
    with ledger_app.app_context():
        row = db.session.get(ConsentRecord, early[0]["proof"]["record"]["record_id"])
        columns = {c.key: getattr(row, c.key) for c in ConsentRecord.__mapper__.column_attrs if c.key != "id"}
        db.session.execute(
            insert(ConsentRecord), [{**columns, "site": "elsewhere", "event_id": str(uuid.uuid4())} for _ in range(300)]
        )
        db.session.commit()
    answers = early + [post_choice(ledger_client) for _ in range(290)]
    seal(ledger_app)
    hashes = leaves(answers)
    root = tree.root(hashes)
    for index in (0, 9, 10, 11, 255, 256, 299):
        answer = answers[index]
        record = answer["proof"]["record"]
        response = ledger_client.get(
            f"{BASE}/inclusion?record={record['record_id']}", headers={**ORIGIN, "X-Consent-Receipt": answer["receipt"]}
        )
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["leaf_index"] == index
        path = [bytes.fromhex(value) for value in body["proof"]]
        assert tree.verify_inclusion(index, 300, hashes[index], path, root)
