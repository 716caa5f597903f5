"""One JSON error shape for every status the service answers with."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from consent.store.models import db

CODES = {
    400: "malformed",
    401: "unauthorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ApiError(HTTPException):
    """An HTTP error with field messages, raised by views: ``raise ApiError(422, ..., fields)``."""

    def __init__(self, code: int, message: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(description=message)
        self.code = code
        self.fields = fields or {}


def error_body(status: int, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error document: ``{"error": {"code", "message", "fields"}}``."""
    return {"error": {"code": CODES.get(status, "error"), "message": message, "fields": fields or {}}}


def _http_error(error: HTTPException) -> ResponseReturnValue:
    status = error.code or 500
    message = error.description or ""
    if status == 429:
        message = f"too many requests ({message}); retry after the time in Retry-After"
    response = jsonify(error_body(status, message, getattr(error, "fields", None)))
    response.status_code = status
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def _database_unavailable(error: DBAPIError) -> ResponseReturnValue:
    db.session.rollback()
    if isinstance(error, OperationalError) or error.connection_invalidated:
        current_app.logger.warning("database unavailable: %s", type(error.orig).__name__)
        response = jsonify(error_body(503, "the database is unavailable; retry shortly"))
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    return _unexpected(error)


def _unexpected(error: Exception) -> ResponseReturnValue:
    # Logged with its traceback for the operator; the client learns nothing of it.
    current_app.logger.exception("unexpected error", exc_info=error)
    return _http_error(InternalServerError("internal error"))


def init_app(app: Flask) -> None:
    """Route every error, expected or not, to the JSON shape."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
