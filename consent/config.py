"""Every setting of the service in one table: name, default, type and what it does.

Each is read from the environment as ``CONSENT_<NAME>`` (once, at start-up).
The factory fills Flask's configuration from this table; gunicorn's settings
(``gunicorn.conf.py``) come from it too. ``docs/operations.md`` holds the same
table for readers, and a test keeps the two equal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_SECRET_KEY = "demo-only-secret-key-set-CONSENT_SECRET_KEY"


class ConfigurationError(Exception):
    """The configuration is unsafe or incomplete for running outside the demo, or a value is not of its type."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    type: type
    doc: str
    # Where the value is used: "service" (Flask's configuration) or "gunicorn".
    scope: str = "service"

    @property
    def variable(self) -> str:
        return f"CONSENT_{self.name}"


SETTINGS = (
    Setting("DATABASE_URL", None, str,
            "`sqlite:///path.db` or `postgresql://user@host:5432/db` (psycopg 3); default: the SQLite file "
            "`instance/consent.db`"),
    Setting("SECRET_KEY", DEFAULT_SECRET_KEY, str,
            "signs access tokens and dashboard sessions; **required outside the demo**, and kept: tokens signed "
            "with an old key stop working"),
    Setting("LEDGER_KEY_FILE", None, str,
            "PEM file of the ledger's Ed25519 private key (`consent keys generate`); **required outside the "
            "demo**, which makes one under `instance/`"),
    Setting("LEDGER_RETIRED_KEYS", None, str,
            "JSON file of retired public keys with their validity (`consent keys retire`)"),
    Setting("INSTANCE", None, str,
            "folder of the SQLite database and the demo's key (default: `instance/` in a checkout, "
            "else in the directory the service runs from)"),
    Setting("ADMIN_TOKENS", "", str, "comma-separated bearer tokens for admin calls (`Authorization: Bearer …`)"),
    Setting("INVENTORY", "cookies.yaml", str, "one inventory file, or a folder of them (one site per `*.yaml`)"),
    Setting("PUBLIC_URL", None, str,
            "the service's address as browsers reach it (`https://consent.example.com`): banners post there; "
            "never taken from `Host`. A site's `public_url` overrides it"),
    Setting("TRUSTED_PROXIES", 0, int,
            "number of reverse proxies in front; the client address then comes from `X-Forwarded-For`"),
    Setting("REGION_HEADER", None, str,
            "the request header a trusted CDN or proxy sets to the visitor's country: any name, or `cloudflare` "
            "(`CF-IPCountry`), `cloudfront` (`CloudFront-Viewer-Country` and `-Region`), `vercel` "
            "(`X-Vercel-IP-Country` and `-Country-Region`); unset: every region header is ignored"),
    Setting("REGION_SUBDIVISION_HEADER", None, str,
            "the trusted header with the visitor's subdivision (`CA` or `US-CA`), if the country header's name "
            "does not imply one"),
    Setting("GEOIP_DATABASE", None, str,
            "a MaxMind `.mmdb` file (country or city) to find the region from the client address when no trusted "
            "header gives one; needs the `geoip` extra"),
    Setting("DEMO", False, bool, "the demo mode `consent serve` switches on when no secret key is set"),
    Setting("MAX_CONTENT_LENGTH", 16 * 1024, int, "largest request body accepted, bytes (413 beyond)"),
    Setting("RATELIMIT_ENABLED", True, bool, "rate limits on the endpoints browsers post to and on the login"),
    Setting("RATELIMIT_STORAGE_URL", "memory://", str,
            "`memory://`, or `redis://127.0.0.1:6379` to share the limits across instances"),
    Setting("RATELIMIT_STRATEGY", "fixed-window", str, "`fixed-window`, `moving-window` or `sliding-window-counter`"),
    Setting("RATELIMIT_KEY_PREFIX", "consent", str, "prefix of the limiter's keys in a shared storage"),
    Setting("RATELIMIT_CONSENT_PER_CLIENT", "600 per minute", str,
            "recorded choices per client network (generous: offices and carriers share addresses)"),
    Setting("RATELIMIT_CONSENT_PER_SITE", "20000 per minute", str, "recorded choices per site, to bound a flood"),
    Setting("RATELIMIT_UNDECLARED_PER_CLIENT", "60 per minute", str, "undeclared-cookie reports per client network"),
    Setting("RATELIMIT_UNDECLARED_PER_SITE", "3000 per minute", str, "undeclared-cookie reports per site"),
    Setting("RATELIMIT_ADMIN_LOGIN", "10 per minute", str, "failed dashboard logins per client address and account"),
    Setting("RATELIMIT_ADMIN_LOGIN_PER_CLIENT", "30 per minute", str, "failed dashboard logins per client address"),
    Setting("RATELIMIT_ADMIN_LOGIN_PER_ACCOUNT", "100 per minute", str, "failed dashboard logins per account"),
    Setting("ADMIN_SESSION_SECONDS", 12 * 3600, int, "how long a dashboard session lasts"),
    Setting("UNDECLARED_MAX_NAMES", 500, int, "undeclared cookie names kept per site"),
    Setting("UNDECLARED_MAX_PATHS", 20, int, "pages remembered per undeclared cookie name"),
    Setting("SEAL_INTERVAL", 10, float,
            "seconds between sealing passes on the write path (0: off, run `consent seal` from cron)"),
    Setting("SEAL_GRACE", 2, float,
            "seconds a sealing pass stays behind the newest id (PostgreSQL commits out of order)"),
    Setting("SEAL_MAX_DELAY", None, float,
            "seconds `consent verify` lets a record wait to be sealed (default: derived from the two above)"),
    Setting("BIND", "127.0.0.1:8000", str, "gunicorn's address", "gunicorn"),
    Setting("WORKERS", None, int, "gunicorn sync workers (default: two per core)", "gunicorn"),
    Setting("TIMEOUT", 300, int, "gunicorn worker timeout, seconds (long exports)", "gunicorn"),
    Setting("ACCESS_LOG", "-", str,
            "access log file (`-`: stderr; empty: none); never holds client addresses or query strings", "gunicorn"),
)  # fmt: skip

BY_NAME = {setting.name: setting for setting in SETTINGS}


def defaults() -> dict[str, Any]:
    """Flask's configuration before the environment: every service setting at its default."""
    return {setting.name: setting.default for setting in SETTINGS if setting.scope == "service"}


def parse_value(setting: Setting, text: str) -> Any:
    if setting.type is bool:
        return text.strip().lower() in ("1", "true", "yes", "on")
    if setting.type in (int, float):
        return setting.type(text)
    return text


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings given as ``CONSENT_<NAME>`` variables, parsed by their type.

    Variables that name no setting here are passed on as Flask would read them
    (JSON where they parse as JSON), so that Flask's own keys can be set too.
    """
    environ = os.environ if environ is None else environ
    given: dict[str, Any] = {}
    for variable, text in environ.items():
        if not variable.startswith("CONSENT_"):
            continue
        name = variable.removeprefix("CONSENT_")
        setting = BY_NAME.get(name)
        if setting is None:
            try:
                given[name] = json.loads(text)
            except ValueError:
                given[name] = text
        elif setting.scope == "service":
            try:
                given[name] = parse_value(setting, text)
            except ValueError as error:
                raise ConfigurationError(f"{variable}: expected {setting.type.__name__}, got {text!r}") from error
    return given


def value(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """One setting from the environment, or its default (for gunicorn.conf.py and the commands)."""
    setting = BY_NAME[name]
    text = (os.environ if environ is None else environ).get(setting.variable)
    return setting.default if text is None else parse_value(setting, text)
