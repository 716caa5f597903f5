"""``consent witness`` against the service as operators run it (gunicorn on 127.0.0.1), by an insider with the key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy import delete, select

from consent.cli import cli
from consent.ledger import heads, sealing
from consent.ledger.keys import key_set
from consent.ledger.leaves import HASH_AT, LEAF
from consent.ledger.signing import TREE_HEAD, PublicKey, key_id, sign
from consent.ledger.tiles import StoredTree
from consent.store.models import ConsentRecord, LedgerHead, LedgerSeal, LedgerTile, db
from tests.support.live import LiveService
from tests.support.ports import free_port

ORIGIN = {"Origin": "http://localhost:8000"}


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[LiveService]:
    """One gunicorn worker on this session's database; sealing only when a test asks."""
    live = LiveService(database_url, workers=1)
    live.env["CONSENT_SEAL_INTERVAL"] = "0"
    with live:
        yield live


@pytest.fixture
def insider(make_app: Any) -> Flask:
    """The same database and the same signing key as the service: an insider who holds the key."""
    return make_app(SEAL_INTERVAL=0, SEAL_GRACE=0)


def head_url(service: LiveService, site: str = "demo") -> str:
    return f"{service.base}/api/v1/sites/{site}/ledger/head"


def grow(app: Flask, count: int) -> None:
    """Record ``count`` choices and seal them under a new head."""
    client = app.test_client()
    for _ in range(count):
        body = {
            "event_id": str(uuid.uuid4()),
            "action": "reject_all",
            "choices": {},
            "revision": 1,
            "page_url": "https://shop.example/",
        }
        assert client.post("/api/v1/sites/demo/consents", json=body, headers=ORIGIN).status_code == 201
    with app.app_context():
        sealing.seal("demo", sealing.read_horizon())


def witness(app: Flask, url: str, store: Path, *more: str) -> Result:
    result = app.test_cli_runner().invoke(cli, ["witness", url, "--store", str(store), *more])
    assert isinstance(result.exception, SystemExit | None), result.exception  # no traceback, ever
    assert "Traceback" not in result.output
    return result


def failed(result: Result, *words: str) -> None:
    """The run exited non-zero with one clear line naming the problem."""
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], result.output


def resign_heads(app: Flask, sizes: list[int]) -> None:
    """As an insider with the key: drop every head, then sign new ones over the tree as it is stored now."""
    with app.app_context():
        db.session.execute(delete(LedgerHead).where(LedgerHead.site == "demo"))
        for size in sizes:
            heads.sign_head("demo", size, StoredTree("demo").root(size))
        db.session.commit()


def roll_back(app: Flask, size: int) -> None:
    """Remove every leaf from ``size`` on, with its records, seals, tiles and heads, then re-sign the smaller head."""
    with app.app_context():
        kept = db.session.scalars(select(LedgerSeal).where(LedgerSeal.first_index + LedgerSeal.leaf_count <= size))
        through = max((seal.last_id for seal in kept), default=0)
        db.session.execute(delete(LedgerSeal).where(LedgerSeal.site == "demo", LedgerSeal.last_id > through))
        db.session.execute(delete(ConsentRecord).where(ConsentRecord.site == "demo", ConsentRecord.id > through))
        db.session.execute(delete(LedgerTile).where(LedgerTile.site == "demo"))
        db.session.commit()
    resign_heads(app, [size])


def rewrite_leaf(app: Flask, position: int) -> None:
    """Change the record at tree position ``position`` and its leaf, as a forger rewriting history would."""
    with app.app_context():
        seal = db.session.scalars(
            select(LedgerSeal).where(
                LedgerSeal.first_index <= position, LedgerSeal.first_index + LedgerSeal.leaf_count > position
            )
        ).one()
        leaves = bytearray(seal.leaves)
        at = (position - seal.first_index) * LEAF.size
        record_id = LEAF.unpack_from(leaves, at)[0]
        forged = bytes.fromhex("ab" * 32)
        leaves[at + HASH_AT : at + LEAF.size] = forged
        seal.leaves = bytes(leaves)
        record = db.session.get(ConsentRecord, record_id)
        record.action, record.record_hash = "accept_all", forged.hex()
        db.session.commit()


def test_the_witness_stores_heads_that_verify_later(service: LiveService, insider: Flask, tmp_path: Path) -> None:
    store = tmp_path / "witness.jsonl"
    grow(insider, 3)
    first = witness(insider, head_url(service), store)
    assert first.exit_code == 0, first.output
    assert "first head stored, 3 leaves" in first.output
    grow(insider, 5)
    second = witness(insider, head_url(service), store)
    assert second.exit_code == 0, second.output
    assert "consistent, 3 -> 8 leaves" in second.output
    again = witness(insider, head_url(service), store)
    assert again.exit_code == 0 and "unchanged at 8 leaves" in again.output
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["keys", "head", "head"]
    assert [line["head"]["tree_size"] for line in lines[1:]] == [3, 8]
    assert lines[2]["from"] == 3 and lines[2]["proof"]
    verified = insider.test_cli_runner().invoke(cli, ["verify", "--site", "demo", "--witness", str(store)])
    assert verified.exit_code == 0, verified.output
    assert "demo: intact" in verified.output


def test_a_rollback_behind_a_witnessed_head_is_caught_by_witness_and_verify(
    service: LiveService, insider: Flask, tmp_path: Path
) -> None:
    store = tmp_path / "witness.jsonl"
    grow(insider, 5)
    assert witness(insider, head_url(service), store).exit_code == 0
    grow(insider, 4)
    assert witness(insider, head_url(service), store).exit_code == 0
    roll_back(insider, 5)
    failed(witness(insider, head_url(service), store), "ROLLBACK", "5 leaves", "9 leaves")
    result = insider.test_cli_runner().invoke(cli, ["verify", "--site", "demo", "--witness", str(store)])
    assert result.exit_code == 1, result.output
    assert "NOT INTACT" in result.output
    assert "covers 9 leaves, but the log holds 5" in result.output
    # Without the witness the rolled-back log looks intact: the store is what catches it.
    alone = insider.test_cli_runner().invoke(cli, ["verify", "--site", "demo"])
    assert alone.exit_code == 0, alone.output


def test_a_rollback_that_grows_again_past_the_witnessed_size_is_caught(
    service: LiveService, insider: Flask, tmp_path: Path
) -> None:
    store = tmp_path / "witness.jsonl"
    grow(insider, 4)
    assert witness(insider, head_url(service), store).exit_code == 0
    grow(insider, 2)
    assert witness(insider, head_url(service), store).exit_code == 0
    roll_back(insider, 4)
    grow(insider, 5)  # new records where the removed ones were: a larger head, but another history
    failed(witness(insider, head_url(service), store), "INCONSISTENT", "6 leaves")


@pytest.mark.parametrize("grows", [0, 3])
def test_a_rewritten_history_is_caught(service: LiveService, insider: Flask, tmp_path: Path, grows: int) -> None:
    store = tmp_path / "witness.jsonl"
    grow(insider, 4)
    grow(insider, 4)
    assert witness(insider, head_url(service), store).exit_code == 0
    if grows:
        grow(insider, grows)
    rewrite_leaf(insider, 2)
    with insider.app_context():
        sizes = [head["tree_size"] for head in heads.heads("demo")]
    resign_heads(insider, sizes)
    failed(witness(insider, head_url(service), store), "INCONSISTENT", "rewritten")
    result = insider.test_cli_runner().invoke(cli, ["verify", "--site", "demo", "--witness", str(store)])
    assert result.exit_code == 1
    assert "witnessed head" in result.output and "rewritten behind it" in result.output


def test_a_forged_head_is_refused(service: LiveService, insider: Flask, tmp_path: Path) -> None:
    store = tmp_path / "witness.jsonl"
    grow(insider, 2)
    assert witness(insider, head_url(service), store).exit_code == 0
    grow(insider, 2)
    with insider.app_context():  # without the key: the newest head's root changed, its signature kept
        newest = heads.latest("demo")
        newest.root_hash = "cd" * 32
        db.session.commit()
    failed(witness(insider, head_url(service), store), "not validly signed", "forged or altered")
    before = store.read_text()
    assert witness(insider, head_url(service), store).exit_code != 0
    assert store.read_text() == before  # nothing refused is ever stored


def test_a_head_signed_with_a_key_the_service_does_not_publish_is_refused(
    service: LiveService, insider: Flask, tmp_path: Path
) -> None:
    store = tmp_path / "witness.jsonl"
    grow(insider, 2)
    with insider.app_context():
        newest = heads.latest("demo")
        signed = sign(Ed25519PrivateKey.generate(), {**heads.as_json(newest), "tree_size": 2})
        newest.key_id, newest.signature = signed["key_id"], signed["signature"]
        db.session.commit()
    failed(witness(insider, head_url(service), store), "not one of the trusted keys")


def test_an_altered_store_is_refused(service: LiveService, insider: Flask, tmp_path: Path) -> None:
    store = tmp_path / "witness.jsonl"
    grow(insider, 2)
    assert witness(insider, head_url(service), store).exit_code == 0
    grow(insider, 2)
    assert witness(insider, head_url(service), store).exit_code == 0
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    lines[2]["proof"] = ["00" * 32]
    store.write_text("".join(json.dumps(line) + "\n" for line in lines))
    failed(witness(insider, head_url(service), store), "not proven to extend", "altered")


def test_keys_from_a_file_must_sign_the_head(service: LiveService, insider: Flask, tmp_path: Path) -> None:
    grow(insider, 2)
    stranger = Ed25519PrivateKey.generate().public_key()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [PublicKey(key_id(stranger), stranger).as_json()]}))
    failed(witness(insider, head_url(service), tmp_path / "s.jsonl", "--keys", str(keys)), "not one of the trusted")
    with insider.app_context():
        keys.write_text(json.dumps(key_set()))
    assert witness(insider, head_url(service), tmp_path / "t.jsonl", "--keys", str(keys)).exit_code == 0


def test_an_unreachable_service_fails_with_one_clear_line(insider: Flask, tmp_path: Path) -> None:
    store = tmp_path / "witness.jsonl"
    url = f"http://127.0.0.1:{free_port()}/api/v1/sites/demo/ledger/head"
    failed(witness(insider, url, store), "unreachable", url)
    assert not store.exists()


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/api/v1/sites/demo/ledger/head", ("404", "no signed tree head yet")),
        ("/api/v1/sites/nope/ledger/head", ("404", "unknown site")),
        ("/api/v1/sites/demo/inventory", ("not a head URL",)),
    ],
)
def test_no_head_to_witness_fails_with_one_clear_line(
    service: LiveService, insider: Flask, tmp_path: Path, path: str, words: tuple[str, ...]
) -> None:
    failed(witness(insider, f"{service.base}{path}", tmp_path / "witness.jsonl"), *words)


def test_a_head_is_the_tree_head_statement(service: LiveService, insider: Flask, tmp_path: Path) -> None:
    grow(insider, 1)
    store = tmp_path / "witness.jsonl"
    assert witness(insider, head_url(service), store).exit_code == 0
    stored = json.loads(store.read_text().splitlines()[1])["head"]
    assert stored["type"] == TREE_HEAD and stored["site"] == "demo" and stored["tree_size"] == 1
