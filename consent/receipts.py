"""Checking a receipt: a visitor proves what they chose, and learns whether the log still says so.

A receipt is signed over ``[site, consent_id, record_id, record_hash]``. The
check answers whether the stored record still hashes to that record_hash,
whether a seal holds it, or whether it was erased (a tombstone carries it).
"""

from __future__ import annotations

from typing import Any

import click
from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature
from sqlalchemy import select

from consent import ledger
from consent.errors import ApiError
from consent.history import sealed_in
from consent.inventory import get_site, sites
from consent.models import ConsentRecord, LedgerCheckpoint, db
from consent.recording import HASHED_FIELDS, iso, receipt_signer, record_hash

bp = Blueprint("receipts", __name__, url_prefix="/api/v1")


def _erased(site: str, record_id: int, digest: str) -> bool:
    wanted = bytes.fromhex(digest[:32])
    for leaves in db.session.scalars(
        select(LedgerCheckpoint.leaves).where(LedgerCheckpoint.site == site, LedgerCheckpoint.kind == "forget")
    ):
        if any(leaf[0] == record_id and leaf[3] == wanted for leaf in ledger.unpack_leaves(leaves)):
            return True
    return False


def check_receipt(site: str, receipt: str) -> dict[str, Any]:
    """What the log says about the record a receipt was issued for; ValueError if the receipt is not valid."""
    try:
        payload = receipt_signer().loads(receipt)
    except BadSignature as error:
        raise ValueError("the receipt's signature does not verify") from error
    if not isinstance(payload, list) or len(payload) != 4 or payload[0] != site:
        raise ValueError(f"the receipt was not issued by site {site!r}")
    _, consent_id, record_id, digest = payload
    answer: dict[str, Any] = {"site": site, "consent_id": consent_id, "record_id": record_id, "record_hash": digest}
    record = db.session.get(ConsentRecord, record_id)
    if record is None or record.site != site:
        answer["status"] = "erased" if _erased(site, record_id, digest) else "missing"
        return answer
    stored = record_hash({name: getattr(record, name) for name in HASHED_FIELDS})
    same = stored == digest == record.record_hash and record.consent_id == consent_id
    answer["status"] = "matches" if same else "differs"
    answer["sealed_in"] = sealed_in(site, record_id, digest)
    answer["record"] = {
        "recorded_at": iso(record.recorded_at),
        "action": record.action,
        "choices": {name: getattr(record, name) for name in ("necessary", "functional", "analytics", "advertising")},
        "inventory_hash": record.inventory_hash,
    }
    return answer


@bp.get("/sites/<site>/receipt")
def receipt_view(site: str) -> ResponseReturnValue:
    """Check a receipt (``X-Consent-Receipt`` or ``?receipt=``) against the log."""
    current = get_site(site)
    receipt = request.headers.get("X-Consent-Receipt") or request.args.get("receipt")
    if not receipt:
        raise ApiError(400, "send the receipt in X-Consent-Receipt or ?receipt=")
    try:
        answer = check_receipt(current.key, receipt)
    except ValueError as error:
        raise ApiError(403, str(error)) from error
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@click.command("verify-receipt")
@click.option("--site", "site_key", required=True, help="The site's key.")
@click.argument("receipt")
def verify_receipt_command(site_key: str, receipt: str) -> None:
    """Check a visitor's receipt against the log; exit 1 unless the stored record matches it."""
    if site_key not in sites():
        raise click.BadParameter(f"unknown site {site_key!r}", param_hint="--site")
    try:
        answer = check_receipt(site_key, receipt)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    seal = answer.get("sealed_in")
    sealed = f", sealed in checkpoint {seal}" if seal else ""
    click.echo(f"record {answer['record_id']} of consent ID {answer['consent_id']}: {answer['status']}{sealed}")
    if answer["status"] not in ("matches", "erased"):
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    """Register the receipt check route and ``consent verify-receipt``."""
    app.register_blueprint(bp)
    app.cli.add_command(verify_receipt_command)
