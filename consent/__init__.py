"""consent: a self-hosted cookie consent manager with a server-side consent log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

DEFAULT_SECRET_KEY = "demo-only-secret-key-set-CONSENT_SECRET_KEY"


def create_app(test_config: dict[str, Any] | None = None, *, routes: bool = True) -> Flask:
    """Build the service: configuration, inventory, database, errors, then the routes.

    ``routes=False`` builds only what the commands that read the log in bulk
    (``consent export``, ``consent verify``) need: configuration, inventory,
    database and those commands. Without the web service around them they start
    in about half the time and memory.
    """
    # Flask is imported here, not at the top: the offline verifier (consent.verify)
    # lives in this package and runs with the cryptography package alone.
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    # templates/ and static/ sit at the project root, beside this package.
    app = Flask(__name__, instance_relative_config=True, static_folder=None, template_folder="../templates")
    app.config.from_mapping(
        SECRET_KEY=DEFAULT_SECRET_KEY,
        DATABASE_URL=None,
        ADMIN_TOKENS="",
        INVENTORY="cookies.yaml",
        RATELIMIT_STORAGE_URL="memory://",
        # Many visitors can share one address (offices, mobile carriers): the
        # per-client limit is generous; the per-site one bounds a flood.
        RATELIMIT_CONSENT_PER_CLIENT="600 per minute",
        RATELIMIT_CONSENT_PER_SITE="20000 per minute",
        RATELIMIT_ENABLED=True,
        DEMO=False,
        MAX_CONTENT_LENGTH=16 * 1024,
        # Sealing (consent.ledger.sealing): every SEAL_INTERVAL seconds on the write path (0: off, seal
        # from cron), SEAL_GRACE seconds after observing the newest id (PostgreSQL commits out of order);
        # SEAL_MAX_DELAY (None: derived) is how long verify lets a record wait to be sealed.
        SEAL_INTERVAL=10,
        SEAL_GRACE=2,
        SEAL_MAX_DELAY=None,
        TRUSTED_PROXIES=0,
    )
    if test_config is None:
        app.config.from_prefixed_env("CONSENT")
    else:
        app.config.update(test_config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if int(app.config["TRUSTED_PROXIES"]):
        # Behind N reverse proxies the client address comes from X-Forwarded-For.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from consent import database, inventory, request_log, security
    from consent.export import views as export
    from consent.ledger import keys
    from consent.verify import command as verify

    security.init_app(app, DEFAULT_SECRET_KEY)
    request_log.init_app(app)
    keys.init_app(app)
    inventory.init_app(app)
    database.init_app(app)
    if not routes:
        app.cli.add_command(export.export_command)
        app.cli.add_command(verify.verify_command)
        return app

    from consent import (
        api,
        banner,
        declaration,
        erasure,
        errors,
        health,
        history,
        limits,
        metrics,
        openapi,
        receipts,
        retention,
    )
    from consent.ledger import sealing, witness
    from consent.ledger import views as ledger_views

    database.init_migrations(app)
    errors.init_app(app)
    limits.init_app(app)
    metrics.init_app(app)
    keys.init_routes(app)
    for proof in (sealing, ledger_views, witness, export, verify, history, receipts, retention, erasure):
        proof.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(banner.bp)
    app.register_blueprint(declaration.bp)
    app.register_blueprint(openapi.bp)
    # The dashboard, its statistics and the undeclared-cookie reports.
    from consent import admin, stats, undeclared, users

    users.init_app(app)
    stats.init_app(app)
    undeclared.init_app(app)
    admin.init_app(app)
    return app
