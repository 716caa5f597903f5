"""The export endpoint in the service's OpenAPI description: every format, its parameters, responses and errors."""

from __future__ import annotations

from apispec import APISpec

from consent.api.openapi import SITE, error_responses

PROOF = {
    "type": "object",
    "description": "The detached proof of the exported records (see the export's description).",
    "required": ["type", "site", "head", "export", "range_proof", "erasures", "inventories", "keys", "seals"],
    "properties": {
        "type": {"type": "string", "const": "consent/export-proof/v1"},
        "site": {"type": "string"},
        "head": {"type": ["object", "null"], "description": "The signed tree head the range is proven against"},
        "export": {
            "type": "object",
            "description": "Signed statement: site, format, since, until, first_index, end_index, tree_size, "
            "root_hash, exported_at",
        },
        "range_proof": {"type": "array", "items": {"type": "string"}},
        "erasures": {"type": "array", "items": {"type": "object"}},
        "inventories": {"type": "array", "items": {"type": "object"}},
        "keys": {"type": "object"},
        "seals": {"type": "array", "items": {"type": "object"}},
    },
}
MOMENT = {"type": "string", "description": "A date (2026-11-21, midnight UTC) or an ISO 8601 date-time (UTC)"}
DESCRIPTION = """\
Streams the records of the site in [since, until) that one signed tree head covers, oldest first, in one
snapshot of the database. format=csv: one header row (after a UTF-8 BOM) and one row per record; jsonl: one
JSON object per line; iso27560: one ISO/IEC TS 27560 consent record per line; nothing else in any of them.
format=proof: the detached proof of the same records exported as `proves` (signed head, Merkle range
proof, signed export statement, erasures, inventory versions, public keys); format=bundle: a zip of
records.csv, records.jsonl, proof.json, inventories/<hash>.json and a README.txt for the auditor.

Records newer than the head are not exported until sealed. Every response carries X-Consent-Tree-Size, the
size of the head it was cut at (0: no head yet, an empty export): pass it as tree_size when fetching the
proof in a second request, so that the file and its proof cover the same records."""
TREE_SIZE_HEADER = {
    "X-Consent-Tree-Size": {
        "description": "The tree size of the signed head the export was cut at (0 when the site has none yet)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def document(spec: APISpec) -> None:
    """Add the export endpoint to the service's OpenAPI description."""
    spec.components.schema("ExportProof", PROOF)
    text = {"schema": {"type": "string"}}
    parameters = [
        {
            "name": "format",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["csv", "jsonl", "iso27560", "proof", "bundle"], "default": "csv"},
        },
        {"name": "since", "in": "query", "required": False, "schema": MOMENT, "description": "Inclusive"},
        {"name": "until", "in": "query", "required": False, "schema": MOMENT, "description": "Exclusive"},
        {
            "name": "tree_size",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": "Cut at the signed head of this size (from X-Consent-Tree-Size); default the newest",
        },
        {
            "name": "proves",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["csv", "jsonl", "iso27560"], "default": "csv"},
            "description": "With format=proof: the format of the export file the proof is for (it names it)",
        },
    ]
    spec.path(
        path="/api/v1/sites/{site}/export",
        parameters=[SITE],
        operations={
            "get": {
                "summary": "The site's compliance export, its proof, or an audit bundle",
                "description": DESCRIPTION,
                "parameters": parameters,
                "security": [{"admin": []}],
                "responses": {
                    "200": {
                        "description": "The export (an attachment), streamed",
                        "headers": TREE_SIZE_HEADER,
                        "content": {
                            "text/csv": text,
                            "application/jsonl": text,
                            "application/json": {"schema": "ExportProof"},
                            "application/zip": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    **error_responses(401, 403, 404, 422, 429, 503),
                },
            }
        },
    )
