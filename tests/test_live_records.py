"""Reading the live log a seal at a time: intact seals settled in one comparison, others record by record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consent.ledger import sealing
from consent.verify.checker import Verifier
from consent.verify.live import SPAN, record_ranges
from tests.support.consent_log import execute, findings, insert_records, post_choice, records, run

LONG_AGO = datetime.now(UTC) - timedelta(days=2000)  # the demo site keeps records 1825 days


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Per block of records that verification met, whether it was settled in one comparison."""
    outcomes: list[bool] = []
    take_block = Verifier._take_block

    def recorded(self: Verifier, block: Any) -> bool:
        settled = take_block(self, block)
        outcomes.append(settled)
        return settled

    monkeypatch.setattr(Verifier, "_take_block", recorded)
    return outcomes


def test_each_seal_is_one_range_and_the_rest_comes_in_spans():
    seals = [(0, 30), (30, 60), (60, 90)]
    assert record_ranges(1, 100, seals) == [(1, 30), (31, 60), (61, 90), (91, 100)]
    assert record_ranges(40, 50, seals) == [(40, 50)]
    assert record_ranges(1, 2 * SPAN + 10, []) == [(1, SPAN), (SPAN + 1, 2 * SPAN), (2 * SPAN + 1, 2 * SPAN + 10)]
    assert record_ranges(95, 95 + SPAN, seals) == [(95, 94 + SPAN), (95 + SPAN, 95 + SPAN)]


def test_an_intact_log_is_settled_a_seal_at_a_time(proof_app, blocks, monkeypatch):
    monkeypatch.setattr(sealing, "MAX_LEAVES", 2)
    client = proof_app.test_client()
    for _ in range(5):
        post_choice(client)
    run(proof_app, "seal")
    post_choice(client)  # not sealed yet
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 0, result.output
    assert "6 records checked, 5 sealed under signed heads; 1 not sealed yet" in result.output
    assert blocks == [True, True, True, True]


def test_seals_with_purged_and_erased_records_are_settled_too(proof_app, blocks, monkeypatch):
    monkeypatch.setattr(sealing, "MAX_LEAVES", 2)
    insert_records(proof_app, [LONG_AGO + timedelta(minutes=minute) for minute in range(3)])
    post_choice(proof_app.test_client())
    post_choice(proof_app.test_client())
    assert run(proof_app, "seal").exit_code == 0
    log = records(proof_app)
    assert run(proof_app, "purge").exit_code == 0
    assert run(proof_app, "forget", "--site", "demo", log[3][1]).exit_code == 0
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 0, result.output
    assert "1 records checked, 1 sealed" in result.output and "1 erased, 3 purged" in result.output
    assert blocks and all(blocks)


def test_only_the_seal_with_a_changed_record_is_read_record_by_record(proof_app, blocks, monkeypatch):
    monkeypatch.setattr(sealing, "MAX_LEAVES", 2)
    client = proof_app.test_client()
    for _ in range(6):
        post_choice(client)
    run(proof_app, "seal")
    log = records(proof_app)
    execute(proof_app, "UPDATE consent_records SET analytics = NOT analytics WHERE id = :id", id=log[2][0])
    result = run(proof_app, "verify", "--site", "demo")
    assert result.exit_code == 1
    assert [(kind, record_id) for kind, record_id, _ in findings(result.output)] == [("changed", log[2][0])]
    assert blocks == [True, False, True]
