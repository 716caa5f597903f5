"""The JSON API under ``/api/v1``: inventory, recording choices, a visitor's history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue

from consent.export.dpv import receipt
from consent.export.formats import COLUMNS, STORED
from consent.export.iso27560 import record_builder
from consent.inventory.sites import get_site
from consent.inventory.texts import CATEGORIES
from consent.log.history import records_of
from consent.log.recording import CONSENT_SCHEMA, record_consent
from consent.log.tokens import check_receipt
from consent.store.database import remember_inventory
from consent.store.models import ConsentRecord, db
from consent.timestamps import iso, utcnow
from consent.web.auth import is_admin
from consent.web.bodies import load_body
from consent.web.cors import allow_origin, cors_headers, preflight
from consent.web.errors import ApiError
from consent.web.limits import client_network, limited, site_key
from consent.web.regions import locate, sent_gpc

bp = Blueprint("api", __name__, url_prefix="/api/v1")

bp.after_request(cors_headers)


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
    allow_origin(current, admin_may_omit=False)
    if request.method == "OPTIONS":
        return preflight("POST", "Content-Type")
    data = load_body(CONSENT_SCHEMA, "consent record")
    remember_inventory(current)
    # The regime, region and Sec-GPC are the server's to find, never the body's.
    located = locate(request)
    body, created = record_consent(
        current, data, request.remote_addr, request.user_agent.string, located.region, sent_gpc(request)
    )
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
        "regime": row.regime,
        "region": row.region,
        "sec_gpc": row.sec_gpc,
        "record_hash": row.record_hash,
    }


def _columns(row: ConsentRecord) -> dict[str, Any]:
    """A stored record as the export's columns (consent.export.formats), booleans as booleans."""
    values = {name: getattr(row, STORED.get(name, name)) for name in COLUMNS}
    values["recorded_at"] = iso(row.recorded_at)
    return values


HISTORY_FORMATS = ("json", "iso27560")


@bp.route("/sites/<site>/consents/<consent_id>", methods=["GET", "OPTIONS"])
def consent_history(site: str, consent_id: str) -> ResponseReturnValue:
    """A visitor's own history, authorised by their receipt (header or ``?receipt=``) or an admin token.

    ``?format=iso27560`` gives it as a DPV-27560 consent receipt holding one ISO/IEC TS 27560 record per choice.
    """
    current = get_site(site)
    allow_origin(current, admin_may_omit=True)
    if request.method == "OPTIONS":
        return preflight("GET", "X-Consent-Receipt")
    fmt = request.args.get("format", "json")
    if fmt not in HISTORY_FORMATS:
        raise ApiError(422, "invalid parameters", {"format": [f"must be one of {', '.join(HISTORY_FORMATS)}"]})
    if not is_admin():
        token = request.headers.get("X-Consent-Receipt") or request.args.get("receipt")
        check_receipt(current.key, consent_id, token)
    rows = records_of(current.key, consent_id)
    if not rows:
        raise ApiError(404, "no records for this consent ID")
    if fmt == "iso27560":
        builder = record_builder(current, db.session)
        response = jsonify(receipt(builder, consent_id, [builder.record(_columns(r)) for r in rows], iso(utcnow())))
        response.mimetype = "application/ld+json"
    else:
        response = jsonify(
            {"site": current.key, "consent_id": consent_id, "records": [_public_record(r) for r in rows]}
        )
    if "receipt" in request.args:
        extension = "jsonld" if fmt == "iso27560" else "json"
        response.headers["Content-Disposition"] = f'attachment; filename="consent-{consent_id}.{extension}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
