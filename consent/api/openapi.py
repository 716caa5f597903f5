"""The OpenAPI 3 description of the API, built with apispec from the marshmallow schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, render_template
from marshmallow import Schema, fields

from consent.log.recording import ConsentSchema

bp = Blueprint("openapi", __name__)


class ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(required=True)  # type: ignore[assignment]  # the error's "fields", as the API names it


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


class ChoicesSchema(Schema):
    necessary = fields.Boolean(required=True)
    functional = fields.Boolean(required=True)
    analytics = fields.Boolean(required=True)
    advertising = fields.Boolean(required=True)


class RecordSchema(Schema):
    record_id = fields.Integer(required=True)
    recorded_at = fields.String(required=True)
    action = fields.String(required=True)
    choices = fields.Nested(ChoicesSchema, required=True)
    revision = fields.Integer(required=True)
    inventory_hash = fields.String(required=True)
    language = fields.String(required=True)
    page_url = fields.String(required=True)
    ip = fields.String(required=True)
    user_agent = fields.String(required=True)
    gpc = fields.Boolean(required=True)
    dnt = fields.Boolean(required=True)
    # What the server applied; null on records from before regions.
    regime = fields.String(required=True, allow_none=True)
    region = fields.String(required=True, allow_none=True)
    sec_gpc = fields.Boolean(required=True, allow_none=True)
    record_hash = fields.String(required=True)


class HistorySchema(Schema):
    site = fields.String(required=True)
    consent_id = fields.String(required=True)
    records = fields.List(fields.Nested(RecordSchema), required=True)


class StatusSchema(Schema):
    status = fields.String(required=True)


INVENTORY = {
    "type": "object",
    "required": ["site", "name", "revision", "hash", "languages", "categories", "cookies", "texts"],
    "properties": {
        "site": {"type": "string"},
        "name": {"type": "string"},
        "revision": {"type": "integer"},
        "hash": {"type": "string"},
        "policy_url": {"type": "string"},
        "languages": {"type": "array", "items": {"type": "string"}},
        "consent_max_age_days": {"type": "integer"},
        "retention_days": {"type": "integer"},
        "cookie_domain": {"type": ["string", "null"]},
        "layout": {"type": "string", "enum": ["bar", "box"]},
        "categories": {"type": "array", "items": {"type": "object"}},
        "cookies": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "match", "category", "provider", "purpose", "expiry"],
                "properties": {
                    "expiry": {
                        "type": "object",
                        "properties": {"seconds": {"type": ["integer", "null"]}, "text": {"type": "object"}},
                    }
                },
            },
        },
        "texts": {"type": "object"},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
SIGNED = {"key_id": {"type": "string"}, "signature": {"type": "string", "description": "base64 Ed25519"}}
# The ledger's signed statements and proofs (consent.ledger.signing, RFC 9162 section 2.1).
LEDGER_SCHEMAS: dict[str, dict[str, Any]] = {
    "TreeHead": {
        "type": "object",
        "required": ["type", "site", "tree_size", "root_hash", "timestamp", "key_id", "signature"],
        "properties": {
            "type": {"const": "consent/tree-head/v1"},
            "site": {"type": "string"},
            "tree_size": {"type": "integer", "minimum": 0},
            "root_hash": HEX,
            "timestamp": {"type": "string", "format": "date-time"},
            **SIGNED,
        },
    },
    "RecordStatement": {
        "type": "object",
        "required": ["type", "site", "consent_id", "record_id", "record_hash", "recorded_at", "action", "choices"],
        "properties": {
            "type": {"const": "consent/record/v1"},
            "site": {"type": "string"},
            "consent_id": {"type": "string"},
            "record_id": {"type": "integer"},
            "record_hash": HEX,
            "recorded_at": {"type": "string", "format": "date-time"},
            "action": {"type": "string"},
            "choices": {"type": "object", "additionalProperties": {"type": "boolean"}},
            **SIGNED,
        },
    },
    "Receipt": {
        "type": "object",
        "description": "What recording a choice answers",
        "required": ["consent_id", "recorded_at", "receipt", "proof"],
        "additionalProperties": False,
        "properties": {
            "consent_id": {"type": "string"},
            "recorded_at": {"type": "string", "format": "date-time"},
            "receipt": {"type": "string", "description": "The visitor's secret access token"},
            "proof": _ref("Proof"),
        },
    },
    "Proof": {
        "type": "object",
        "description": "The shareable proof of one record: its signed statement and the newest signed head",
        "required": ["record", "head"],
        "properties": {"record": _ref("RecordStatement"), "head": {"anyOf": [_ref("TreeHead"), {"type": "null"}]}},
    },
    "KeySet": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key_id", "algorithm", "public_key", "not_before", "not_after"],
                    "properties": {
                        "key_id": {"type": "string"},
                        "algorithm": {"const": "Ed25519"},
                        "public_key": {"type": "string", "description": "base64 of the 32 raw bytes"},
                        "not_before": {"type": ["string", "null"]},
                        "not_after": {"type": ["string", "null"]},
                        "status": {"enum": ["current", "retired"]},
                    },
                },
            }
        },
    },
    "Consistency": {
        "type": "object",
        "required": ["site", "from", "to", "proof", "from_head", "to_head"],
        "properties": {
            "site": {"type": "string"},
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "proof": {"type": "array", "items": HEX},
            "from_head": {"anyOf": [_ref("TreeHead"), {"type": "null"}]},
            "to_head": {"anyOf": [_ref("TreeHead"), {"type": "null"}]},
        },
    },
    "Inclusion": {
        "type": "object",
        "required": ["site", "record_id", "leaf_index", "tree_size", "leaf_hash", "proof", "head"],
        "properties": {
            "site": {"type": "string"},
            "record_id": {"type": "integer"},
            "leaf_index": {"type": "integer"},
            "tree_size": {"type": "integer"},
            "leaf_hash": HEX,
            "proof": {"type": "array", "items": HEX},
            "head": _ref("TreeHead"),
        },
    },
    "ProofCheck": {
        "type": "object",
        "required": ["site", "consent_id", "record_id", "record_hash", "status"],
        "properties": {
            "site": {"type": "string"},
            "consent_id": {"type": "string"},
            "record_id": {"type": "integer"},
            "record_hash": {"type": "string"},
            "status": {"enum": ["matches", "differs", "missing", "erased"]},
            "leaf_index": {"type": ["integer", "null"]},
            "record": {"type": "object"},
        },
    },
}

SITE = {
    "name": "site",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
    "example": "demo",
}


def error_responses(*statuses: int) -> dict[str, Any]:
    described = {
        400: "Malformed JSON",
        401: "Admin credentials required",
        403: "Origin, token or receipt refused",
        404: "Unknown site or consent ID",
        405: "Method not allowed",
        409: "event_id already used by another request (another body or access token); nothing written",
        413: "Body over 16 KB",
        415: "Content type other than application/json or text/plain",
        422: "Invalid values, a message per field",
        429: "Rate limited; see Retry-After",
        503: "Database unavailable",
    }
    return {
        str(s): {"description": described[s], "content": {"application/json": {"schema": "Error"}}} for s in statuses
    }


# The DPV-27560 consent receipt of ``?format=iso27560`` (its records: docs/records.md).
DPV_RECEIPT = {
    "type": "object",
    "required": ["@context", "@type", "dct:identifier", "dct:conformsTo", "dct:created", "dpv:hasRecordOfActivity"],
    "properties": {
        "@type": {"const": "dpv:ConsentReceipt"},
        "dpv:hasRecordOfActivity": {
            "type": "array",
            "items": {"type": "object", "required": ["@type", "dct:identifier", "dpv:hasProcess", "consent:record"]},
        },
    },
}


def ok_response(description: str, schema: Any, status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {"application/json": {"schema": schema}}}}


def build_spec() -> APISpec:
    """The OpenAPI document for the routes of this service."""
    spec = APISpec(
        title="consent",
        version="1",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": "Cookie consent service: inventory, consent records, history."},
    )
    spec.components.security_scheme("admin", {"type": "http", "scheme": "bearer"})
    for name, schema in (
        ("Error", ErrorSchema),
        ("ConsentRequest", ConsentSchema),
        ("History", HistorySchema),
        ("Status", StatusSchema),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.schema("Inventory", INVENTORY)
    for name, document in LEDGER_SCHEMAS.items():
        spec.components.schema(name, document)
    spec.path(
        path="/api/v1/sites/{site}/inventory",
        parameters=[SITE],
        operations={
            "get": {
                "summary": "The site's cookie inventory",
                "responses": {
                    **ok_response("Inventory", "Inventory"),
                    "304": {"description": "Not modified"},
                    **error_responses(404, 503),
                },
            }
        },
    )
    # text/plain (for sendBeacon) carries the same JSON; documented in the description.
    body = {"required": True, "content": {"application/json": {"schema": "ConsentRequest"}}}
    spec.path(
        path="/api/v1/sites/{site}/consents",
        parameters=[SITE],
        operations={
            "post": {
                "summary": "Record a visitor's choice",
                "description": "Needs an Origin declared by the site, or an admin token. The answer holds the "
                "visitor's secret access token (receipt) and the shareable signed proof of the record. A replayed "
                "event_id answers 200 with the first answer only to the same request (the same body and access "
                "token); any other request with that event_id gets 409. The same JSON may be sent as text/plain "
                "(sendBeacon).",
                "requestBody": body,
                "responses": {
                    **ok_response("Recorded", "Receipt", 201),
                    **ok_response("Replay of a recorded event", "Receipt"),
                    **error_responses(400, 403, 404, 409, 413, 415, 422, 429, 503),
                },
            }
        },
    )
    spec.path(
        path="/api/v1/sites/{site}/consents/{consent_id}",
        parameters=[SITE, {"name": "consent_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        operations={
            "get": {
                "summary": "A visitor's consent history",
                "description": "Authorised by the visitor's receipt (X-Consent-Receipt header or ?receipt=) "
                "or an admin token. format=iso27560: the history as a W3C DPV-27560 consent receipt "
                "(application/ld+json) holding one ISO/IEC TS 27560 consent record per choice.",
                "parameters": [
                    {"name": "X-Consent-Receipt", "in": "header", "required": False, "schema": {"type": "string"}},
                    {"name": "receipt", "in": "query", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["json", "iso27560"], "default": "json"},
                    },
                ],
                "security": [{}, {"admin": []}],
                "responses": {
                    "200": {
                        "description": "History",
                        "content": {
                            "application/json": {"schema": "History"},
                            "application/ld+json": {"schema": DPV_RECEIPT},
                        },
                    },
                    **error_responses(401, 403, 404, 422, 503),
                },
            }
        },
    )
    _ledger_paths(spec)
    for path, summary, errors in (("/healthz", "Liveness", ()), ("/readyz", "Readiness: the database answers", (503,))):
        spec.path(
            path=path,
            operations={
                "get": {"summary": summary, "responses": {**ok_response(summary, "Status"), **error_responses(*errors)}}
            },
        )
    spec.path(
        path="/api/v1/openapi.json",
        operations={
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    )
    for extend in current_app.extensions.get("consent.api.openapi", []):
        extend(spec)
    return spec


def _ledger_paths(spec: APISpec) -> None:
    """The ledger's keys, signed heads and proofs, and the check of a visitor's proof."""
    public = "Public; cacheable for a few seconds."
    spec.path(
        path="/api/v1/ledger/keys",
        operations={
            "get": {
                "summary": "The Ed25519 public keys that sign tree heads and proofs",
                "responses": {**ok_response("Key set", "KeySet"), **error_responses(503)},
            }
        },
    )
    spec.path(
        path="/api/v1/sites/{site}/ledger/head",
        parameters=[SITE],
        operations={
            "get": {
                "summary": "The site's newest signed tree head",
                "description": public,
                "responses": {**ok_response("Signed tree head", "TreeHead"), **error_responses(404, 503)},
            }
        },
    )
    size = {"type": "integer", "minimum": 0}
    spec.path(
        path="/api/v1/sites/{site}/ledger/consistency",
        parameters=[SITE],
        operations={
            "get": {
                "summary": "An RFC 9162 consistency proof between two sizes of the site's tree",
                "description": f"0 <= from <= to <= the newest head's size; to defaults to that size. {public}",
                "parameters": [
                    {"name": "from", "in": "query", "required": True, "schema": size},
                    {"name": "to", "in": "query", "required": False, "schema": size},
                ],
                "responses": {**ok_response("Consistency proof", "Consistency"), **error_responses(404, 422, 503)},
            }
        },
    )
    spec.path(
        path="/api/v1/sites/{site}/ledger/inclusion",
        parameters=[SITE],
        operations={
            "get": {
                "summary": "The RFC 9162 audit path of one record against the newest signed head",
                "description": "For an admin, or with the visitor's access token (X-Consent-Receipt) of the "
                "consent ID the record belongs to. 404: the record is unknown (to an admin) or not sealed yet.",
                "parameters": [
                    {
                        "name": "record",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                    },
                    {"name": "X-Consent-Receipt", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
                "security": [{}, {"admin": []}],
                "responses": {**ok_response("Inclusion proof", "Inclusion"), **error_responses(403, 404, 422, 503)},
            }
        },
    )
    spec.path(
        path="/api/v1/sites/{site}/receipt",
        parameters=[SITE],
        operations={
            "post": {
                "summary": "Check a visitor's proof against the log",
                "description": "The body is the proof as the consents POST answered it (or its record "
                "statement alone). 403: its signature does not verify or it is another site's.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Proof")}}},
                "responses": {**ok_response("What the log holds", "ProofCheck"), **error_responses(400, 403, 404, 503)},
            }
        },
    )


@bp.get("/api/v1/openapi.json")
def openapi_json() -> dict[str, Any]:
    """The OpenAPI 3 description of the API."""
    return build_spec().to_dict()


@bp.get("/api/v1/docs")
def reference() -> str:
    """A small HTML reference of the API, rendered from the OpenAPI document."""
    return render_template("api_reference.html", spec=build_spec().to_dict())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
