"""Structured JSON logs with a request id, and nothing personal in them."""

from __future__ import annotations

import logging
import re
import secrets
import time

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from consent.web.redaction import loggable_path

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Adds the current request's id and route (never its address or query) to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id", "-")
            # An unmatched path is the client's text: consent IDs masked, control characters escaped.
            record.route = request.url_rule.rule if request.url_rule else loggable_path(request.path)
            record.method = request.method
        return True


def request_id(given: str | None) -> str:
    """The client's X-Request-ID when it is a plain token, else a new random one."""
    return given if given and REQUEST_ID.match(given) else secrets.token_hex(16)


def _assign_request_id() -> None:
    # When the request started, for the latency metric (consent.web.metrics): one hook instead of two.
    g.started = time.perf_counter()
    g.request_id = request_id(request.headers.get("X-Request-ID"))


def _echo_request_id(response: Response) -> Response:
    if "request_id" in g:
        response.headers.add("X-Request-ID", g.request_id)
    return response


def init_app(app: Flask) -> None:
    """Log JSON lines to stderr and tag each request with an ``X-Request-ID``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{message}", style="{"))
    handler.addFilter(RequestIdFilter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(logging.INFO)
    app.logger.propagate = False
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
