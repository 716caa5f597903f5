"""The JSON API under ``/api/v1``: inventory, recording choices, a visitor's history."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError
from sqlalchemy import select

from consent.inventory.sites import Site, get_site
from consent.inventory.texts import CATEGORIES
from consent.ledger.canonical import iso
from consent.log.recording import CONSENT_SCHEMA, check_receipt, record_consent
from consent.store.database import remember_inventory
from consent.store.models import ConsentRecord, db
from consent.web.auth import is_admin
from consent.web.errors import ApiError
from consent.web.limits import client_network, limited, site_key

bp = Blueprint("api", __name__, url_prefix="/api/v1")

JSON_TYPES = ("application/json", "text/plain")
PREFLIGHT_MAX_AGE = "86400"


def _allow_origin(site: Site, *, admin_may_omit: bool) -> None:
    """Accept the request's Origin only if the site declares it; remember it for the CORS headers."""
    origin = request.headers.get("Origin")
    if origin is None:
        if admin_may_omit or is_admin():
            return
        raise ApiError(403, "a request without Origin needs an admin token")
    if origin.rstrip("/") not in site.origins:
        raise ApiError(403, f"origin {origin!r} may not use site {site.key!r}")
    g.cors_origin = origin


@bp.after_request
def _cors_headers(response: Response) -> Response:
    headers = response.headers
    origin = g.get("cors_origin")
    if origin:
        headers.add("Access-Control-Allow-Origin", origin)
        headers.add("Access-Control-Expose-Headers", "Retry-After")
    # response.vary parses and rewrites the header; most answers have none yet.
    if any(name.lower() == "vary" for name, _ in headers.items()):
        response.vary.add("Origin")
    else:
        headers.add("Vary", "Origin")
    return response


def _preflight(methods: str, headers: str) -> ResponseReturnValue:
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = methods
    response.headers["Access-Control-Allow-Headers"] = headers
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


class DuplicateKey(ValueError):
    """A JSON object names one key twice: which value was meant is anyone's guess."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook for ``json.loads`` that refuses duplicate keys instead of keeping the last."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for at, key in enumerate(keys) if key in keys[:at])
        raise DuplicateKey(f"duplicate key {twice!r}")
    return obj


def _not_a_number(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON number")


def _body_bytes() -> bytes:
    """The body, refused with 413 past MAX_CONTENT_LENGTH whether or not it declared a length.

    werkzeug refuses a Content-Length over the limit; a chunked or streamed body
    it reads up to the limit and hands over cut short. Such a body is read here
    one byte past the limit instead, so that too long is told from just long enough.
    """
    limit = request.max_content_length
    if limit is None or request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return request.get_data(cache=False)
    stream, parts, size = request.environ["wsgi.input"], [], 0
    while size <= limit:
        part = stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise ApiError(413, f"the body is over {limit} bytes")
    return b"".join(parts)


def _json_body() -> dict[str, Any]:
    """The request body as a JSON object, sent as application/json or text/plain (sendBeacon).

    UTF-8 only (RFC 8259): json.loads would guess UTF-16 and UTF-32 from bytes,
    so the text is decoded first. Duplicate keys, NaN and Infinity are refused;
    so is nesting too deep to parse.
    """
    if request.mimetype not in JSON_TYPES:
        raise ApiError(415, "send the body as application/json or text/plain")
    try:
        body = json.loads(_body_bytes().decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_not_a_number)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and DuplicateKey are ValueErrors
        raise ApiError(400, f"the body is not valid UTF-8 JSON: {error}") from error
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


@bp.get("/sites/<site>/inventory")
def inventory(site: str) -> ResponseReturnValue:
    """The site's inventory: revision, hash, categories and cookies with expiry text and seconds."""
    current = get_site(site)
    remember_inventory(current)
    response = jsonify({**current.public, "hash": current.hash})
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.set_etag(current.hash)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response.make_conditional(request)


@bp.route("/sites/<site>/consents", methods=["POST", "OPTIONS"])
@limited(("RATELIMIT_CONSENT_PER_CLIENT", client_network), ("RATELIMIT_CONSENT_PER_SITE", site_key))
def create_consent(site: str) -> ResponseReturnValue:
    """Record a visitor's choice: 201, or 200 with the same body for a replayed event_id."""
    current = get_site(site)
    _allow_origin(current, admin_may_omit=False)
    if request.method == "OPTIONS":
        return _preflight("POST", "Content-Type")
    try:
        data = CONSENT_SCHEMA.load(_json_body())
    except ValidationError as error:
        raise ApiError(422, "invalid consent record", error.normalized_messages()) from error
    remember_inventory(current)
    body, created = record_consent(current, data, request.remote_addr, request.user_agent.string)
    return body, 201 if created else 200


def _public_record(row: ConsentRecord) -> dict[str, Any]:
    return {
        "record_id": row.id,
        "recorded_at": iso(row.recorded_at),
        "action": row.action,
        "choices": {category: getattr(row, category) for category in CATEGORIES},
        "revision": row.revision,
        "inventory_hash": row.inventory_hash,
        "language": row.language,
        "page_url": row.page_url,
        "ip": row.ip,
        "user_agent": row.user_agent,
        "gpc": row.gpc,
        "dnt": row.dnt,
        "record_hash": row.record_hash,
    }


@bp.route("/sites/<site>/consents/<consent_id>", methods=["GET", "OPTIONS"])
def consent_history(site: str, consent_id: str) -> ResponseReturnValue:
    """A visitor's own history, authorised by their receipt (header or ``?receipt=``) or an admin token."""
    current = get_site(site)
    _allow_origin(current, admin_may_omit=True)
    if request.method == "OPTIONS":
        return _preflight("GET", "X-Consent-Receipt")
    if not is_admin():
        receipt = request.headers.get("X-Consent-Receipt") or request.args.get("receipt")
        check_receipt(current.key, consent_id, receipt)
    rows = db.session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.site == current.key, ConsentRecord.consent_id == consent_id)
        .order_by(ConsentRecord.id)
    ).all()
    if not rows:
        raise ApiError(404, "no records for this consent ID")
    response = jsonify(
        {
            "site": current.key,
            "consent_id": consent_id,
            "records": [_public_record(r) for r in rows],
        }
    )
    if "receipt" in request.args:
        response.headers["Content-Disposition"] = f'attachment; filename="consent-{consent_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
