"""The cookie declaration: an HTML page per site, and a widget for a site's own privacy page."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from consent.embed.scripts import CACHE_CONTROL, BuiltScript, script_response
from consent.inventory.sites import Site, get_site
from consent.resources import STATIC, TEMPLATES
from consent.store.database import remember_inventory
from consent.store.models import InventoryVersion, db
from consent.timestamps import iso

WIDGET_SOURCE = STATIC / "declaration.js"
# The widget's source holds this placeholder where the site's declaration goes.
WIDGET_PLACEHOLDER = "/* DECLARATION */ null"
# The strings the widget shows; all of them come from the site's public inventory.
WIDGET_TEXTS = (
    "preferences", "consent_id", "consent_date", "name", "provider", "purpose", "expiry",
    "change", "withdraw", "download", "granted", "denied", "no_choice", "revision", "first_served",
)  # fmt: skip

bp = Blueprint("declaration", __name__, template_folder=str(TEMPLATES))


def first_served_at(site: Site) -> datetime:
    """When the site's current inventory version was first served (stored now if it never was)."""
    known: dict[str, datetime] = current_app.extensions.setdefault("consent.first_served", {})
    if site.hash not in known:
        remember_inventory(site)
        query = select(InventoryVersion.first_served_at).where(InventoryVersion.hash == site.hash)
        served = db.session.scalar(query)
        if served is None:
            # The table was emptied behind this process's back: store the version again.
            current_app.extensions.get("consent.stored_versions", set()).discard(site.hash)
            remember_inventory(site)
            served = db.session.execute(query).scalar_one()
        known[site.hash] = served
    return known[site.hash]


def page_language(site: Site) -> str:
    """``?lang=`` if the site offers it, else the browser's best match, else the default."""
    wanted = request.args.get("lang") or request.accept_languages.best_match(site.languages)
    return site.pick_language(wanted)


@bp.get("/s/<site>/cookies")
def declaration_page(site: str) -> ResponseReturnValue:
    """The cookie declaration as a printable HTML page, in ``?lang=`` or the browser's language."""
    current = get_site(site)
    language = page_language(current)
    public = current.public
    cookies_by_category = {
        category["key"]: [c for c in public["cookies"] if c["category"] == category["key"]]
        for category in public["categories"]
    }
    nonce = secrets.token_urlsafe(16)
    html = render_template(
        "declaration.html",
        site=public,
        lang=language,
        texts=public["texts"][language],
        cookies_by_category=cookies_by_category,
        first_served=first_served_at(current),
        nonce=nonce,
    )
    response = Response(html, mimetype="text/html")
    # Inventory texts are escaped; this policy makes sure nothing in them could run anyway.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; base-uri 'none'; form-action 'none'"
    )
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.vary.add("Accept-Language")
    return response


def widget_declaration(site: Site) -> dict[str, Any]:
    """What the widget needs from the public inventory: the same texts, nothing more."""
    public = site.public
    return {
        "site": public["site"],
        "name": public["name"],
        "revision": public["revision"],
        "hash": site.hash,
        "first_served_at": iso(first_served_at(site)),
        "api": f"{request.script_root}/api/v1/sites/{site.key}",
        "languages": public["languages"],
        "categories": public["categories"],
        "cookies": [
            {key: cookie[key] for key in ("name", "match", "category", "provider", "purpose")}
            | {"expiry": cookie["expiry"]["text"]}
            for cookie in public["cookies"]
        ],
        "texts": {lang: {key: strings[key] for key in WIDGET_TEXTS} for lang, strings in public["texts"].items()},
    }


def widget_script(site: Site) -> BuiltScript:
    """The widget with the site's declaration inside, plain and gzipped, and its ETag.

    Built once per inventory version (and mount point) in each process.
    """
    built: dict[tuple[str, str], BuiltScript] = current_app.extensions.setdefault("consent.widgets", {})
    key = (site.hash, request.script_root)
    if key not in built:
        # ASCII-only JSON with "<" escaped is a valid JS literal that no parser can read as markup.
        data = json.dumps(widget_declaration(site), ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c")
        source = WIDGET_SOURCE.read_text(encoding="utf-8")
        body = source.replace(WIDGET_PLACEHOLDER, data, 1).encode()
        built[key] = BuiltScript.of(body)
    return built[key]


@bp.get("/s/<site>/declaration.js")
def declaration_widget(site: str) -> ResponseReturnValue:
    """The widget that renders the declaration and the visitor's consent into ``#consent-declaration``."""
    return script_response(widget_script(get_site(site)))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
