"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, Flask
from sqlalchemy import text

from consent.store.models import db
from consent.web.errors import ApiError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, str]:
    """The database answers."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        db.session.rollback()
        raise ApiError(503, "the database is unavailable") from error
    finally:
        db.session.remove()
    return {"status": "ready"}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
