"""The ledger's public routes: signed tree heads, consistency and inclusion proofs (see consent.ledger.heads)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("ledger", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    """Register the ledger routes."""
    app.register_blueprint(bp)
