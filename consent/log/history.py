"""``consent show``: a visitor's history, each choice beside what they were shown when they made it.

Every record names the inventory hash the visitor saw; the stored inventory
version under that hash gives the categories and cookies of that moment, in
the visitor's language.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from flask import Flask
from sqlalchemy import select

from consent.inventory.sites import canonical_hash, sites
from consent.inventory.texts import CATEGORIES
from consent.ledger.seals import position_of
from consent.store.models import ConsentRecord, InventoryVersion, db
from consent.timestamps import iso


def shown_inventory(inventory_hash: str, language: str) -> dict[str, Any] | None:
    """The categories and cookies of the stored inventory version ``inventory_hash``, in ``language``."""
    version = db.session.get(InventoryVersion, inventory_hash)
    if version is None:
        return None
    content = version.content
    default = content["languages"][0]

    def text(texts: dict[str, str]) -> str:
        return texts.get(language) or texts.get(default) or ""

    return {
        "hash": inventory_hash,
        # The version is stored under the hash of its content: a changed content no longer matches.
        "intact": canonical_hash(content) == inventory_hash,
        "revision": version.revision,
        "first_served_at": iso(version.first_served_at),
        "policy_url": content.get("policy_url"),
        "categories": [
            {
                "key": category["key"],
                "label": text(category["label"]),
                "cookies": [
                    {
                        "name": cookie["name"],
                        "provider": cookie["provider"],
                        "purpose": text(cookie["purpose"]),
                        "expiry": text(cookie["expiry"]["text"]),
                    }
                    for cookie in content["cookies"]
                    if cookie["category"] == category["key"]
                ],
            }
            for category in content["categories"]
        ],
    }


def sealed_in(site: str, record_id: int, record_hash: str) -> int | None:
    """The position in the site's Merkle tree of the leaf that seals ``record_id`` as ``record_hash``, if any."""
    return position_of(site, record_id, record_hash)


def records_of(site: str, consent_id: str) -> Sequence[ConsentRecord]:
    """Every record of one visitor (``consent_id``) on ``site``, oldest first."""
    return db.session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.site == site, ConsentRecord.consent_id == consent_id)
        .order_by(ConsentRecord.id)
    ).all()


def history(site: str, consent_id: str) -> list[dict[str, Any]]:
    """Every record of ``consent_id``, oldest first, each with the inventory shown and its seal."""
    rows = records_of(site, consent_id)
    return [
        {
            "record_id": row.id,
            "recorded_at": iso(row.recorded_at),
            "action": row.action,
            "choices": {category: getattr(row, category) for category in CATEGORIES},
            "language": row.language,
            "page_url": row.page_url,
            "gpc": row.gpc,
            "dnt": row.dnt,
            "record_hash": row.record_hash,
            "sealed_in": sealed_in(site, row.id, row.record_hash),
            "shown": shown_inventory(row.inventory_hash, row.language) or {"hash": row.inventory_hash},
        }
        for row in rows
    ]


def _print(record: dict[str, Any]) -> None:
    choices = ", ".join(f"{key} {'yes' if granted else 'no'}" for key, granted in record["choices"].items())
    flags = " ".join(name.upper() for name in ("gpc", "dnt") if record[name])
    click.echo(f"record {record['record_id']}  {record['recorded_at']}  {record['action']}  {flags}".rstrip())
    click.echo(f"  choices: {choices}")
    click.echo(f"  page: {record['page_url']}  language: {record['language']}")
    seal = record["sealed_in"]
    click.echo(
        f"  record hash {record['record_hash']}; "
        + (f"sealed as leaf {seal}" if seal is not None else "not sealed yet")
    )
    shown = record["shown"]
    if "categories" not in shown:
        click.echo(f"  shown: inventory {shown['hash']} (this version is not stored)")
        return
    intact = "content matches its hash" if shown["intact"] else "ALTERED: its content no longer matches this hash"
    click.echo(f"  shown: revision {shown['revision']}, inventory {shown['hash']} ({intact})")
    click.echo(f"  in use since {shown['first_served_at']}")
    for category in shown["categories"]:
        cookies = ", ".join(f"{c['name']} ({c['provider']}, {c['expiry']})" for c in category["cookies"]) or "none"
        click.echo(f"    {category['label']}: {cookies}")


@click.command("show")
@click.option("--site", "site_key", required=True, help="The site's key.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.argument("consent_id")
def show_command(site_key: str, consent_id: str, as_json: bool) -> None:
    """Show a visitor's history and what they were shown at each choice."""
    if site_key not in sites():
        raise click.BadParameter(f"unknown site {site_key!r}", param_hint="--site")
    records = history(site_key, consent_id)
    if not records:
        raise click.ClickException(f"no records for consent ID {consent_id} on site {site_key!r}")
    if as_json:
        click.echo(json.dumps({"site": site_key, "consent_id": consent_id, "records": records}, indent=2))
        return
    click.echo(f"consent ID {consent_id} on site {site_key}: {len(records)} records")
    for record in records:
        _print(record)


def init_app(app: Flask) -> None:
    """Register ``consent show``."""
    app.cli.add_command(show_command)
