"""consent: a self-hosted cookie consent manager with a server-side consent log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict[str, Any] | None = None, *, routes: bool = True) -> Flask:
    """Build the service: configuration, inventory, database, errors, then the routes.

    ``routes=False`` builds only what the commands that read the log in bulk
    (``consent export``, ``consent verify``) need: configuration, inventory,
    database and those commands. Without the web service around them they start
    in about half the time and memory.

    Each part registers itself (blueprints, hooks, commands) in its ``init_app``;
    the order below is the order their request hooks run in.
    """
    # Flask is imported here, not at the top: the offline verifier (consent.verify)
    # lives in this package and runs with the cryptography package alone.
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from consent import config
    from consent.resources import TEMPLATES, instance_folder

    app = Flask(
        __name__,
        instance_path=str(instance_folder(config.value("INSTANCE"))),
        static_folder=None,
        template_folder=str(TEMPLATES),
    )
    app.config.from_mapping(config.defaults())
    app.config.update(config.from_environment() if test_config is None else test_config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if int(app.config["TRUSTED_PROXIES"]):
        # Behind N reverse proxies the client address comes from X-Forwarded-For.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from consent.export import views as export
    from consent.inventory import sites
    from consent.ledger import keys
    from consent.scan import command as scan
    from consent.store import database
    from consent.verify import command as verify
    from consent.web import request_log, security

    security.init_app(app)
    request_log.init_app(app)
    keys.init_app(app)
    sites.init_app(app)
    database.init_app(app)
    if not routes:
        export.init_commands(app)
        verify.init_app(app)
        scan.init_app(app)
        return app

    from consent.api import openapi
    from consent.api import views as api
    from consent.dashboard import users
    from consent.dashboard import views as dashboard
    from consent.embed import banner, declaration, undeclared
    from consent.ledger import sealing, witness
    from consent.ledger import views as ledger
    from consent.log import erasure, history, receipts, retention, stats
    from consent.web import errors, health, limits, metrics, regions

    database.init_migrations(app)
    # Where visitors are (trusted headers, GeoIP): read by banner.js and by recording.
    regions.init_app(app)
    errors.init_app(app)
    limits.init_app(app)
    metrics.init_app(app)
    # The proof: keys and heads for everyone, sealing on the write path, witnesses, export and verify.
    keys.init_routes(app)
    sealing.init_app(app)
    ledger.init_app(app)
    witness.init_app(app)
    export.init_app(app)
    verify.init_app(app)
    scan.init_app(app)
    # The log's commands and routes.
    history.init_app(app)
    receipts.init_app(app)
    retention.init_app(app)
    erasure.init_app(app)
    # The public routes: health, the API, what sites embed, the API's description.
    health.init_app(app)
    api.init_app(app)
    banner.init_app(app)
    declaration.init_app(app)
    openapi.init_app(app)
    # The dashboard, its statistics and the undeclared-cookie reports.
    users.init_app(app)
    stats.init_app(app)
    undeclared.init_app(app)
    dashboard.init_app(app)
    return app
