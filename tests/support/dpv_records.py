"""Checking DPV-27560 consent records: the project's JSON Schema of the profile, and what a schema cannot say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "dpv-27560-record.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = Draft202012Validator(SCHEMA)


def problems(record: dict[str, Any]) -> list[str]:
    """Every way ``record`` breaks the profile: the schema's errors, then references to undeclared entities."""
    found = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in VALIDATOR.iter_errors(record)]
    if found:
        return found
    entities = {entity["@id"] for entity in record["dpv:hasEntity"]}
    references = [("dct:creator", record["dct:creator"])]
    references += [("dpv:hasDataController", ref) for ref in record.get("dpv:hasDataController", [])]
    for process in record["dpv:hasProcess"]:
        references += [("dpv:hasDataController", ref) for ref in process["dpv:hasDataController"]]
        references += [("dpv:hasRecipient", ref) for ref in process["dpv:hasRecipient"]]
    found += [f"{term}: {ref!r} is not an entity of the record" for term, ref in references if ref not in entities]
    return found


def statuses(record: dict[str, Any]) -> dict[str, str | None]:
    """The consent status of each category's process (None: a process without one)."""
    found: dict[str, str | None] = {}
    for process in record["dpv:hasProcess"]:
        status = process.get("dpv:hasConsentStatus")
        found[process["dct:identifier"]] = status[0]["@type"][0] if status else None
    return found
