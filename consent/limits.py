"""Rate limits (Flask-Limiter): per client network and per site on the consent API.

Limits are counted in process memory by default, or in Redis when
``CONSENT_RATELIMIT_STORAGE_URL`` is set, so that every instance shares them.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_limiter import Limiter

from consent.recording import truncate_ip


def client_network() -> str:
    """The key for per-client limits: the truncated address, the same the log keeps."""
    return truncate_ip(request.remote_addr) or "unknown"


def site_key() -> str:
    """The key for per-site limits."""
    return f"site:{(request.view_args or {}).get('site', '')}"


def consent_per_client() -> str:
    return str(current_app.config["RATELIMIT_CONSENT_PER_CLIENT"])


def consent_per_site() -> str:
    return str(current_app.config["RATELIMIT_CONSENT_PER_SITE"])


limiter = Limiter(key_func=client_network, headers_enabled=True, swallow_errors=True)


def init_app(app: Flask) -> None:
    """Bind the limiter to ``app`` with the configured storage."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["RATELIMIT_STORAGE_URL"])
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "consent")
    limiter.init_app(app)
