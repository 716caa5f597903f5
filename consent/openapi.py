"""The OpenAPI 3 description of the API, built with apispec from the marshmallow schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, render_template
from marshmallow import Schema, fields

from consent.recording import ConsentSchema

bp = Blueprint("openapi", __name__)


class ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(required=True)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


class ReceiptSchema(Schema):
    consent_id = fields.String(required=True)
    recorded_at = fields.String(required=True, metadata={"format": "date-time"})
    receipt = fields.String(required=True)


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

SITE = {
    "name": "site",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
    "example": "demo",
}


def _errors(*statuses: int) -> dict[str, Any]:
    described = {
        400: "Malformed JSON",
        401: "Admin credentials required",
        403: "Origin, token or receipt refused",
        404: "Unknown site or consent ID",
        405: "Method not allowed",
        413: "Body over 16 KB",
        415: "Content type other than application/json or text/plain",
        422: "Invalid values, a message per field",
        429: "Rate limited; see Retry-After",
        503: "Database unavailable",
    }
    return {
        str(s): {"description": described[s], "content": {"application/json": {"schema": "Error"}}} for s in statuses
    }


def _ok(description: str, schema: Any, status: int = 200) -> dict[str, Any]:
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
        ("Receipt", ReceiptSchema),
        ("History", HistorySchema),
        ("Status", StatusSchema),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.schema("Inventory", INVENTORY)
    spec.path(
        path="/api/v1/sites/{site}/inventory",
        parameters=[SITE],
        operations={
            "get": {
                "summary": "The site's cookie inventory",
                "responses": {
                    **_ok("Inventory", "Inventory"),
                    "304": {"description": "Not modified"},
                    **_errors(404, 503),
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
                "description": "Needs an Origin declared by the site, or an admin token. A replayed event_id "
                "answers 200 with the first answer. The same JSON may be sent as text/plain (sendBeacon).",
                "requestBody": body,
                "responses": {
                    **_ok("Recorded", "Receipt", 201),
                    **_ok("Replay of a recorded event", "Receipt"),
                    **_errors(400, 403, 404, 413, 415, 422, 429, 503),
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
                "or an admin token.",
                "parameters": [
                    {"name": "X-Consent-Receipt", "in": "header", "required": False, "schema": {"type": "string"}},
                    {"name": "receipt", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "security": [{}, {"admin": []}],
                "responses": {**_ok("History", "History"), **_errors(401, 403, 404, 503)},
            }
        },
    )
    for path, summary, errors in (("/healthz", "Liveness", ()), ("/readyz", "Readiness: the database answers", (503,))):
        spec.path(
            path=path,
            operations={"get": {"summary": summary, "responses": {**_ok(summary, "Status"), **_errors(*errors)}}},
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
    for extend in current_app.extensions.get("consent.openapi", []):
        extend(spec)
    return spec


@bp.get("/api/v1/openapi.json")
def openapi_json() -> dict[str, Any]:
    """The OpenAPI 3 description of the API."""
    return build_spec().to_dict()


@bp.get("/api/v1/docs")
def reference() -> str:
    """A small HTML reference of the API, rendered from the OpenAPI document."""
    return render_template("api_reference.html", spec=build_spec().to_dict())
