"""``consent init DIR``: a new deployment's files, with fresh secrets, and the command that starts it.

It writes ``cookies.yaml`` for the user's site (to be completed with the
site's cookies), ``ledger-key.pem`` (the ledger's Ed25519 signing key) and
``consent.env`` (the environment: secret key, admin token, database, paths).
The secrets are readable by their owner only. Nothing is overwritten.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from consent.inventory.sites import SITE_KEY, InventoryError, load_site
from consent.ledger.keys import generate_pem, write_private

INVENTORY = """\
# The cookie inventory of {name}: one file describes one site.
# Declare every cookie the site sets, then validate with `consent check`;
# bump `revision` whenever purposes or cookies change (visitors are asked again).
site: {site}
name: {name}
origins:                      # the pages that embed the banner and post choices
  - {origin}
policy_url: /s/{site}/cookies  # the cookie declaration this service serves for the site
revision: 1
consent_max_age_days: 180
retention_days: 1825
languages: [en]
cookies:
  - name: _ga
    match: prefix
    category: analytics
    provider: Google Analytics
    purpose: {{en: "Distinguishes visitors, to count visits and pages seen."}}
    expiry: 13 months
"""


def _write_new(path: Path, text: str, *, secret: bool) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--site", default="mysite", show_default=True, help="The site's key, used in every URL.")
@click.option("--name", default="My Site", show_default=True, help="The controller's name, shown in the banner.")
@click.option("--origin", default="https://www.example.com", show_default=True, help="The site's origin.")
@click.option(
    "--public-url", default="http://127.0.0.1:8000", show_default=True, help="This service's address for browsers."
)
def init_command(directory: Path, site: str, name: str, origin: str, public_url: str) -> None:
    """Set up a new deployment in DIRECTORY: inventory, signing key, environment file."""
    if not SITE_KEY.match(site):
        raise click.BadParameter("must match [a-z0-9-]{1,40}", param_hint="--site")
    directory = directory.resolve()
    names = ("cookies.yaml", "ledger-key.pem", "consent.env")
    existing = [name for name in names if (directory / name).exists()]
    if existing:
        raise click.ClickException(f"{directory}: {', '.join(existing)} already there; nothing was written")
    directory.mkdir(parents=True, exist_ok=True)
    inventory = directory / "cookies.yaml"
    _write_new(inventory, INVENTORY.format(site=site, name=name, origin=origin.rstrip("/")), secret=False)
    try:
        load_site(inventory)
    except InventoryError as error:
        inventory.unlink()
        raise click.ClickException("; ".join(error.errors)) from None
    write_private(directory / "ledger-key.pem", generate_pem())
    token = secrets.token_urlsafe(32)
    environment = {
        "CONSENT_SECRET_KEY": secrets.token_urlsafe(48),
        "CONSENT_LEDGER_KEY_FILE": str(directory / "ledger-key.pem"),
        "CONSENT_ADMIN_TOKENS": token,
        "CONSENT_INVENTORY": str(inventory),
        "CONSENT_INSTANCE": str(directory / "instance"),
        "CONSENT_PUBLIC_URL": public_url.rstrip("/"),
    }
    _write_new(
        directory / "consent.env",
        "# The service's environment; keep this file secret.\n"
        "# The SQLite database lives in CONSENT_INSTANCE; for PostgreSQL set\n"
        "# CONSENT_DATABASE_URL=postgresql://user@host:5432/db\n"
        + "".join(f"{key}={value}\n" for key, value in environment.items()),
        secret=True,
    )
    click.echo(f"wrote {inventory}, {directory / 'ledger-key.pem'} and {directory / 'consent.env'}")
    click.echo("declare the site's cookies in cookies.yaml, then start the service with:")
    click.echo(f"  set -a && . {directory / 'consent.env'} && set +a && consent serve")
