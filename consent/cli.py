"""The ``consent`` command: Flask's CLI with the service's own commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from consent import create_app
from consent.config import ConfigurationError
from consent.init import init_command
from consent.inventory.sites import InventoryError, load_inventory
from consent.ledger.witness import witness_command
from consent.resources import INSTALLED, ROOT, instance_folder


@click.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def check_command(path: Path | None) -> None:
    """Validate inventory files; exit 1 with located errors."""
    path = path or Path(os.environ.get("CONSENT_INVENTORY", "cookies.yaml"))
    try:
        sites = load_inventory(path)
    except InventoryError as error:
        for message in error.errors:
            click.echo(message, err=True)
        raise SystemExit(1) from None
    for site in sites.values():
        click.echo(
            f"{site.source}: site {site.key!r}, revision {site.revision}, "
            f"{len(site.cookies)} cookies, hash {site.hash[:12]}"
        )
        missing = [key for key in ("email", "address") if not site.controller.get(key)]
        if missing:
            # Valid, but ISO/IEC TS 27560 asks the controller's contact point of every record.
            click.echo(
                f"{site.source}: warning: site {site.key!r} names no controller {' or '.join(missing)}: "
                "its ISO 27560 records (consent export --format iso27560) lack the contact point the "
                "standard requires; add controller: {email: ..., address: ...}",
                err=True,
            )


# Left in the instance folder by `consent serve` when it serves the demo.
DEMO_MARKER = "demo"


@click.command("serve")
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="Address and port.")
def serve_command(bind: str) -> None:
    """Upgrade the database, then serve with gunicorn."""
    from flask_migrate import upgrade

    if not os.environ.get("CONSENT_SECRET_KEY"):
        os.environ.setdefault("CONSENT_DEMO", "1")
        click.echo("CONSENT_SECRET_KEY is not set: serving the demo (receipts signed with a demo key)", err=True)
    app = _create_app()
    with app.app_context():
        upgrade()
    if app.config.get("DEMO"):
        # The other commands then work on this demo without CONSENT_DEMO (see _demo_here).
        (Path(app.instance_path) / DEMO_MARKER).touch()
    os.environ["CONSENT_BIND"] = bind
    # The workers find the same folder whatever directory they start in.
    os.environ["CONSENT_INSTANCE"] = app.instance_path
    if not INSTALLED:
        os.chdir(ROOT)  # a checkout: inventory and instance/ as the project root has them
    # gunicorn of this interpreter (a venv's own), with the service's settings and app.
    command = ["-m", "gunicorn", "-c", "python:consent.web.gunicorn_settings", "consent:create_app()"]
    os.execv(sys.executable, [sys.executable, *command])


def _demo_here() -> bool:
    """No secret key is set and ``consent serve`` ran the demo on this instance folder."""
    if os.environ.get("CONSENT_SECRET_KEY"):
        return False
    return (instance_folder(os.environ.get("CONSENT_INSTANCE")) / DEMO_MARKER).exists()


def _create_app(routes: bool = True) -> Flask:
    if _demo_here():
        os.environ.setdefault("CONSENT_DEMO", "1")
    try:
        return create_app(routes=routes)
    except InventoryError as error:
        click.echo("\n".join(error.errors), err=True)
    except ConfigurationError as error:
        click.echo(str(error), err=True)
    sys.exit(1)


def _create_bulk_app() -> Flask:
    return _create_app(routes=False)


class ConsentGroup(FlaskGroup):
    """Flask's command group, whose commands that need no web service (bulk reads, the scan) start without it."""

    BULK = ("export", "verify", "scan")

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        info = ctx.ensure_object(ScriptInfo)
        if name not in self.BULK or info.create_app is not _create_app:
            return super().get_command(ctx, name)
        info.create_app = _create_bulk_app
        app = info.load_app()
        ctx.with_resource(app.app_context())
        return app.cli.get_command(ctx, name)


cli = ConsentGroup(create_app=_create_app, help="Cookie consent service: inventory, consent log, exports.")
cli.add_command(check_command)
cli.add_command(serve_command)
cli.add_command(init_command)
# A witness runs on another machine, with no configuration: it needs no app.
cli.add_command(witness_command)


def main() -> None:
    """Entry point of the ``consent`` console script."""
    cli.main()
