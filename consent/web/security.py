"""Security headers on every response, and refusing to start with demo secrets in production."""

from __future__ import annotations

from flask import Flask, Response

from consent.config import DEFAULT_SECRET_KEY, ConfigurationError
from consent.web.auth import admin_tokens

# The service's own HTML pages need nothing from elsewhere; JSON needs nothing at all.
HTML_POLICY = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"
COMMON = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "strict-origin-when-cross-origin"))
FOR_HTML = (*COMMON, ("Content-Security-Policy", HTML_POLICY), ("X-Frame-Options", "DENY"))
FOR_OTHERS = (*COMMON, ("Content-Security-Policy", OTHER_POLICY))


def _headers(response: Response) -> Response:
    headers = response.headers
    # Which headers the view set, looked up once: a miss in werkzeug's Headers
    # raises and catches an exception, so setdefault() costs a few microseconds each.
    present = {name.lower() for name, _ in headers.items()}
    wanted: tuple[tuple[str, str], ...] = COMMON
    # The raw header, not response.mimetype, which parses it again on every response.
    content_type = response.content_type or ""
    if content_type.startswith("text/html"):
        wanted = FOR_HTML
    elif not content_type.startswith("text/javascript"):
        wanted = FOR_OTHERS
    for name, value in wanted:
        if name.lower() not in present:
            headers.add(name, value)
    return response


def check_secrets(app: Flask, default_secret: str) -> None:
    """Refuse to run outside debug, tests or the demo with the demo key or no admin credential.

    The ledger's signing key is checked where it is loaded (consent.ledger.keys).
    """
    if app.debug or app.testing or app.config.get("DEMO"):
        return
    problems = []
    if app.config["SECRET_KEY"] in (default_secret, "", None):
        problems.append("set CONSENT_SECRET_KEY to a long random value")
    with app.app_context():
        if not admin_tokens():
            problems.append("set CONSENT_ADMIN_TOKENS to at least one admin token")
    if problems:
        raise ConfigurationError(
            "refusing to start outside the demo: " + "; ".join(problems) + " (or CONSENT_DEMO=1 for the demo)"
        )


def init_app(app: Flask) -> None:
    """Check the secrets, then add the headers to every response."""
    check_secrets(app, DEFAULT_SECRET_KEY)
    app.after_request(_headers)
