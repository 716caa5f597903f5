"""Replaying an event_id: the stored answer goes only to the request that made it; anything else learns nothing.

The attacker knows a visitor's event_id (once listed in every export) and
everything else a record says; they do not hold the visitor's access token.
"""

from __future__ import annotations

import pytest

from consent.store.models import ConsentRecord, db
from tests.support.consent_log import choice, records, send


def count(app) -> int:
    with app.app_context():
        return db.session.query(ConsentRecord).count()


def test_a_retry_of_a_first_choice_gets_the_same_answer(app, client):
    body = choice()
    first = send(client, body)
    again = send(client, body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json["consent_id"] == first.json["consent_id"]
    assert again.json["receipt"] == first.json["receipt"]
    assert again.json["proof"]["record"] == first.json["proof"]["record"]
    assert count(app) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"action": "reject_all", "choices": {}},
        {"choices": {"functional": False, "analytics": True, "advertising": False}},
        {"page_url": "https://shop.example/other"},
        {"dnt": True},
        {"language": "nl"},
        {"gpc": True},
    ],
)
def test_a_replay_with_another_body_is_409_and_reveals_nothing(app, client, change):
    body = choice()
    first = send(client, body).json
    replay = send(client, body | change)
    assert replay.status_code == 409
    assert replay.json["error"]["code"] == "conflict"
    text = replay.get_data(as_text=True)
    assert first["consent_id"] not in text and first["receipt"] not in text
    assert count(app) == 1


def test_replaying_a_later_choice_without_its_token_is_409(app, client):
    """A change of mind was sent with the consent ID and token; the same body without them gets nothing."""
    first = send(client, choice()).json
    later = choice(action="withdraw", choices={}, consent_id=first["consent_id"], receipt=first["receipt"])
    assert send(client, later).status_code == 201
    stripped = {key: value for key, value in later.items() if key not in ("consent_id", "receipt")}
    replay = send(client, stripped)
    assert replay.status_code == 409
    assert first["consent_id"] not in replay.get_data(as_text=True)
    assert count(app) == 2


def test_replaying_with_another_visitors_token_is_refused(app, client):
    mine = send(client, choice()).json
    theirs_body = choice()
    theirs = send(client, theirs_body).json
    # With my own consent ID and token, their event_id: refused, their ID not revealed.
    attack = theirs_body | {"consent_id": mine["consent_id"], "receipt": mine["receipt"]}
    replay = send(client, attack)
    assert replay.status_code == 409
    assert theirs["consent_id"] not in replay.get_data(as_text=True)
    # With their consent ID but my token: the token is checked first.
    forged = theirs_body | {"consent_id": theirs["consent_id"], "receipt": mine["receipt"]}
    assert send(client, forged).status_code == 403
    assert count(app) == 2


def test_the_export_no_longer_lists_event_ids(app, client, admin_headers):
    body = choice()
    send(client, body)
    exported = client.get("/api/v1/sites/demo/export?format=jsonl", headers=admin_headers)
    assert exported.status_code == 200
    assert body["event_id"] not in exported.get_data(as_text=True)
    assert "event_id" not in exported.get_data(as_text=True)


@pytest.mark.parametrize(
    "event_id",
    [
        "not-a-uuid-at-all",
        "2f1c0a3e-9b7d-4c1e-8a2b-3c4d5e6f7a8b\n",
        "2f1c0a3e-9b7d-4c1e-8a2b-3c4d5e6f7a8b\x00",
        "2f1c0a3e\r\n9b7d-4c1e-8a2b-3c4d5e6f7a8b",
        "{2f1c0a3e-9b7d-4c1e-8a2b-3c4d5e6f7a8b}",
        "2f1c0a3e9b7d4c1e8a2b3c4d5e6f7a8b",
    ],
)
def test_event_ids_are_strict_uuids(app, client, event_id):
    response = send(client, choice(event_id=event_id))
    assert response.status_code == 422
    assert "event_id" in response.json["error"]["fields"]
    assert records(app) == []


def test_an_upper_case_uuid_is_the_same_event_as_its_lower_case(app, client):
    body = choice()
    first = send(client, body | {"event_id": body["event_id"].upper()})
    again = send(client, body)
    assert first.status_code == 201 and again.status_code == 200
    assert count(app) == 1
