"""ISO/IEC TS 27560 records in the DPV-27560 form: every record written validates, with the right statuses."""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.consent_log import insert_records, post_choice, run
from tests.support.dpv_records import problems, statuses

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": "Bearer test-admin-token"}
OPTIONAL = ("functional", "analytics", "advertising")
HISTORY = "/api/v1/sites/demo/consents/{}"


def exported(app: Flask, tmp_path: Path) -> list[dict[str, Any]]:
    result = run(app, "seal")
    assert result.exit_code == 0, result.output
    path = tmp_path / "records.jsonl"
    result = run(app, "export", "--site", "demo", "--format", "iso27560", "-o", str(path))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def expected(action: str, choices: dict[str, bool], gpc: bool = False) -> dict[str, str | None]:
    """What the visitor's choice means per category, as DPV consent statuses (necessary: none)."""
    if action == "accept_all":
        granted = {category: not (gpc and category == "advertising") for category in OPTIONAL}
    elif action == "custom":
        granted = {category: choices.get(category, False) for category in OPTIONAL}
    else:
        granted = dict.fromkeys(OPTIONAL, False)
    refusal = "dpv:ConsentWithdrawn" if action == "withdraw" else "dpv:ConsentRefused"
    return {"necessary": None, **{c: "dpv:ConsentGiven" if granted[c] else refusal for c in OPTIONAL}}


def test_every_exported_record_validates_with_the_statuses_of_its_choice(proof_app, tmp_path):
    client = proof_app.test_client()
    choices = [
        ("accept_all", {}, False),
        ("accept_all", {}, True),
        ("reject_all", {}, False),
        ("custom", {"functional": True, "analytics": False, "advertising": True}, False),
    ]
    first = None
    for action, picked, gpc in choices:
        body = post_choice(client, action=action, choices=picked, gpc=gpc)
        first = first or body
    assert first is not None
    post_choice(client, action="withdraw", choices={}, consent_id=first["consent_id"], receipt=first["receipt"])
    # A record under an inventory version the service never stored is described by the current inventory.
    insert_records(proof_app, [datetime.now(UTC)])
    records = exported(proof_app, tmp_path)
    assert len(records) == 6
    for record in records:
        assert problems(record) == [], record
    wanted = [expected(action, picked, gpc) for action, picked, gpc in choices] + [expected("withdraw", {})]
    assert [statuses(record) for record in records[:5]] == wanted
    assert len({record["dct:identifier"] for record in records}) == 6


def test_a_category_lasts_as_long_as_its_longest_cookie_and_goes_to_its_providers(proof_app, tmp_path):
    post_choice(proof_app.test_client(), action="accept_all", choices={})
    (record,) = exported(proof_app, tmp_path)
    processes = {process["dct:identifier"]: process for process in record["dpv:hasProcess"]}
    names = {entity["@id"]: entity["dpv:hasName"] for entity in record["dpv:hasEntity"]}
    # The demo's analytics cookies: _ga 13 months (390 days), the rest shorter; three providers.
    analytics = processes["analytics"]
    (duration,) = [c["dpv:hasDuration"] for c in analytics["dpv:hasStorageCondition"] if "dpv:hasDuration" in c]
    assert duration == {"@type": ["dpv:TemporalDuration"], "rdf:value": "P390D"}
    assert sorted(names[ref] for ref in analytics["dpv:hasRecipient"]) == ["Google Analytics", "Hotjar", "HubSpot"]
    assert analytics["dpv:hasPurpose"][0]["skos:prefLabel"] == "Analytics"
    assert analytics["dpv:hasLegalBasis"] == ["dpv:Consent", "eu-gdpr:A6-1-a"]
    necessary = processes["necessary"]
    assert "dpv:hasConsentStatus" not in necessary
    assert necessary["dpv:hasLegalBasis"] == ["dpv:LegitimateInterest", "eu-gdpr:A6-1-f"]
    assert record["dpv:hasJurisdiction"] == ["loc:EU"]
    assert record["dpv:hasConsentControl"]["dpv:isExercisedAt"] == "http://localhost:8000/"


@pytest.mark.parametrize(
    "change",
    [
        "status on necessary",
        "no status",
        "two statuses in one",
        "relative notice",
        "controller without contact",
        "undeclared recipient",
        "free-text legal basis",
        "no storage duration",
        "other profile",
    ],
)
def test_the_schema_refuses_what_the_profile_forbids(proof_app, tmp_path, change):
    post_choice(proof_app.test_client(), action="custom", choices={"analytics": True})
    (record,) = exported(proof_app, tmp_path)
    assert problems(record) == []
    broken = copy.deepcopy(record)
    processes = broken["dpv:hasProcess"]
    if change == "status on necessary":
        processes[0]["dpv:hasConsentStatus"] = processes[1]["dpv:hasConsentStatus"]
    elif change == "no status":
        del processes[2]["dpv:hasConsentStatus"]
    elif change == "two statuses in one":
        processes[1]["dpv:hasConsentStatus"][0]["@type"] = ["dpv:ConsentGiven", "dpv:ConsentRefused"]
    elif change == "relative notice":
        broken["dpv:hasNotice"][0]["schema:url"] = "/s/demo/cookies"
    elif change == "controller without contact":
        broken["dpv:hasEntity"][0]["schema:contactPoint"] = []
    elif change == "undeclared recipient":
        processes[2]["dpv:hasRecipient"].append("https://elsewhere.example/#someone")
    elif change == "free-text legal basis":
        processes[2]["dpv:hasLegalBasis"] = ["consent"]
    elif change == "no storage duration":
        processes[2]["dpv:hasStorageCondition"] = processes[2]["dpv:hasStorageCondition"][:1]
    elif change == "other profile":
        broken["dct:conformsTo"] = "ISO/IEC TS 27560:2023"
    assert problems(broken) != []


ACTIONS = st.sampled_from(["accept_all", "reject_all", "custom", "withdraw"])
CHOICE = st.tuples(ACTIONS, st.fixed_dictionaries({c: st.booleans() for c in OPTIONAL}), st.booleans())


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(CHOICE, min_size=1, max_size=5))
def test_any_sequence_of_choices_under_one_consent_id_gives_valid_records(client, sequence):
    """Hypothesis: each choice of a visitor becomes a record that validates and says what they chose."""
    first: dict[str, Any] | None = None
    for action, picked, gpc in sequence:
        known = {"consent_id": first["consent_id"], "receipt": first["receipt"]} if first else {}
        body = post_choice(client, action=action, choices=picked if action == "custom" else {}, gpc=gpc, **known)
        first = first or body
    assert first is not None
    response = client.get(
        HISTORY.format(first["consent_id"]),
        query_string={"format": "iso27560"},
        headers={"X-Consent-Receipt": first["receipt"]},
    )
    assert response.status_code == 200 and response.mimetype == "application/ld+json"
    records = response.json["dpv:hasRecordOfActivity"]
    assert len(records) == len(sequence)
    for record, (action, picked, gpc) in zip(records, sequence, strict=True):
        assert problems(record) == [], record
        assert statuses(record) == expected(action, picked, gpc)
        assert record["dpv:hasDataSubject"]["dct:identifier"] == first["consent_id"]


def test_the_receipt_as_records_needs_the_access_token_or_an_admin(client):
    mine = post_choice(client, action="reject_all", choices={})
    other = post_choice(client, action="accept_all", choices={})
    path = HISTORY.format(mine["consent_id"])
    query = {"format": "iso27560"}
    by_token = client.get(path, query_string=query, headers={"X-Consent-Receipt": mine["receipt"]})
    assert by_token.status_code == 200
    receipt = by_token.json
    assert receipt["@type"] == "dpv:ConsentReceipt"
    assert receipt["dct:conformsTo"] == "https://w3id.org/dpv/schema/dpv-27560#receipt"
    (record,) = receipt["dpv:hasRecordOfActivity"]
    assert problems(record) == [] and set(statuses(record).values()) == {None, "dpv:ConsentRefused"}
    as_admin = client.get(path, query_string=query, headers=ADMIN)
    assert as_admin.status_code == 200
    assert as_admin.json["dpv:hasRecordOfActivity"] == receipt["dpv:hasRecordOfActivity"]
    download = client.get(path, query_string={**query, "receipt": mine["receipt"]})
    assert download.status_code == 200 and download.headers["Content-Disposition"].endswith('.jsonld"')
    # Without the token, or with someone else's, nothing is told; an unknown consent ID is 404 even to an admin.
    assert client.get(path, query_string=query).status_code == 403
    assert client.get(path, query_string=query, headers={"X-Consent-Receipt": other["receipt"]}).status_code == 403
    assert client.get(HISTORY.format(uuid.uuid4()), query_string=query, headers=ADMIN).status_code == 404
    refused = client.get(path, query_string={"format": "xml"}, headers={"X-Consent-Receipt": mine["receipt"]})
    assert refused.status_code == 422 and list(refused.json["error"]["fields"]) == ["format"]


def documented_records() -> dict[str, dict[str, Any]]:
    """The example records in docs/records.md, by the action each one shows."""
    text = (ROOT / "docs" / "records.md").read_text(encoding="utf-8")
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)]
    return {block["consent:record"]["action"]: block for block in blocks if "consent:record" in block}


def shape(value: Any) -> Any:
    """A document's keys and value types, all the way down (lists by the shapes of their items)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted({json.dumps(shape(item), sort_keys=True) for item in value})
    return type(value).__name__


def test_the_documented_examples_have_the_shape_of_real_records(proof_app, tmp_path):
    documented = documented_records()
    assert set(documented) == {"accept_all", "custom", "withdraw"}
    client = proof_app.test_client()
    given_ = post_choice(client, action="accept_all", choices={})
    post_choice(client, action="custom", choices={"functional": True, "analytics": False, "advertising": False})
    post_choice(client, action="withdraw", choices={}, consent_id=given_["consent_id"], receipt=given_["receipt"])
    real = {record["consent:record"]["action"]: record for record in exported(proof_app, tmp_path)}
    for action, example in documented.items():
        assert problems(example) == [], action
        assert shape(example) == shape(real[action]), action
        assert statuses(example) == statuses(real[action]), action
