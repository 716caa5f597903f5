"""Admin credentials: bearer tokens from configuration, never from code."""

from __future__ import annotations

import hmac

from flask import current_app, request

from consent.web.errors import ApiError


def admin_tokens() -> list[str]:
    """The configured tokens (``CONSENT_ADMIN_TOKENS``, comma-separated)."""
    configured = current_app.config.get("ADMIN_TOKENS") or ""
    if isinstance(configured, (list, tuple)):
        return [str(token) for token in configured if token]
    return [token.strip() for token in str(configured).split(",") if token.strip()]


def is_admin() -> bool:
    """Whether the request carries a valid ``Authorization: Bearer`` admin token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    given = token.strip().encode()
    # Compare against every token so timing does not reveal which one matched.
    matches = [hmac.compare_digest(given, known.encode()) for known in admin_tokens()]
    return any(matches)


def require_admin() -> None:
    """Refuse the request (401 without credentials, 403 with wrong ones) unless it is an admin's."""
    if is_admin():
        return
    if "Authorization" not in request.headers:
        raise ApiError(401, "admin credentials required: Authorization: Bearer <token>")
    raise ApiError(403, "admin token refused")
