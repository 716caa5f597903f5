"""Checking a visitor's proof against the log: is the record it speaks of still there, unchanged and sealed?

A proof (what the API answered when the choice was recorded) is the signed
statement of site, consent ID, record id, record hash, time and choices. Its
signature is checked with the published keys; the check then says whether the
stored record still hashes to that record_hash, which leaf seals it, or
whether a signed erasure removed it.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue

from consent.inventory.sites import get_site, sites
from consent.ledger import events
from consent.ledger.canonical import CATEGORIES, ENTRY_FIELDS, record_hash
from consent.ledger.keys import public_keys
from consent.ledger.seals import position_of
from consent.ledger.signing import RECORD, check
from consent.store.models import ConsentRecord, db
from consent.web.errors import ApiError

bp = Blueprint("receipts", __name__, url_prefix="/api/v1")


def _erased(site: str, position: int | None) -> bool:
    if position is None:
        return False
    return any(start <= position < end for event in events.erasures(site) for start, end in event.get("leaves", []))


def check_proof(site: str, proof: Any) -> dict[str, Any]:
    """What the log says about the record a proof was issued for; ValueError if the proof is not valid."""
    signed = proof.get("record", proof) if isinstance(proof, dict) else None
    why = check(signed, public_keys(), RECORD, at="recorded_at")
    if why is not None:
        raise ValueError(f"the proof is not valid: {why}")
    assert isinstance(signed, dict)
    if signed.get("site") != site:
        raise ValueError(f"the proof was not issued by site {site!r}")
    record_id, digest = signed["record_id"], signed["record_hash"]
    answer: dict[str, Any] = {
        "site": site, "consent_id": signed["consent_id"], "record_id": record_id, "record_hash": digest,
    }  # fmt: skip
    record = db.session.get(ConsentRecord, record_id)
    if record is None or record.site != site:
        # A removed record's leaf stays: an erasure that names its position explains the absence.
        answer["status"] = "erased" if _erased(site, position_of(site, record_id, digest)) else "missing"
        return answer
    stored = record_hash({name: getattr(record, name) for name in ENTRY_FIELDS})
    same = stored == digest == record.record_hash and record.consent_id == signed["consent_id"]
    answer["status"] = "matches" if same else "differs"
    answer["leaf_index"] = position_of(site, record_id, digest)
    answer["record"] = {
        "recorded_at": signed["recorded_at"],
        "action": record.action,
        "choices": {name: getattr(record, name) for name in CATEGORIES},
        "inventory_hash": record.inventory_hash,
    }
    return answer


@bp.post("/sites/<site>/receipt")
def receipt_view(site: str) -> ResponseReturnValue:
    """Check a visitor's proof (the JSON body) against the log."""
    current = get_site(site)
    proof = request.get_json(silent=True)
    if not isinstance(proof, dict):
        raise ApiError(400, "send the proof as a JSON body")
    try:
        answer = check_proof(current.key, proof)
    except ValueError as error:
        raise ApiError(403, str(error)) from error
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@click.command("verify-receipt")
@click.option("--site", "site_key", required=True, help="The site's key.")
@click.argument("proof", type=click.File("r"))
def verify_receipt_command(site_key: str, proof: Any) -> None:
    """Check a visitor's proof (a JSON file) against the log; exit 1 unless the stored record matches it."""
    if site_key not in sites():
        raise click.BadParameter(f"unknown site {site_key!r}", param_hint="--site")
    try:
        answer = check_proof(site_key, json.load(proof))
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    leaf = answer.get("leaf_index")
    sealed = f", sealed as leaf {leaf}" if leaf is not None else ""
    click.echo(f"record {answer['record_id']} of consent ID {answer['consent_id']}: {answer['status']}{sealed}")
    if answer["status"] not in ("matches", "erased"):
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    """Register the proof check route and ``consent verify-receipt``."""
    app.register_blueprint(bp)
    app.cli.add_command(verify_receipt_command)
