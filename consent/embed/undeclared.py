"""Undeclared cookies: names that visitors' browsers carry but the site's inventory does not declare.

The banner reports the names (never the values) once per visitor and
revision, with nothing that identifies the visitor. They are kept per site,
name and page path with a count and first/last sighting. The endpoint is
rate limited, accepts only names shaped like cookie names, and keeps at most
``UNDECLARED_MAX_NAMES`` names per site and ``UNDECLARED_MAX_PATHS`` paths
per name (further pages count under ``*``), so it cannot fill the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import click
from apispec import APISpec
from flask import Blueprint, Flask, current_app, request
from flask.cli import with_appcontext
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import func, select

from consent.api.openapi import SITE, error_responses, ok_response
from consent.inventory.sites import CONSENT_COOKIE, Cookie, Site, get_site, sites
from consent.store.database import dialect_insert
from consent.store.models import UndeclaredCookie, db
from consent.timestamps import utcnow
from consent.web.bodies import load_body
from consent.web.cors import allow_origin, cors_headers, preflight
from consent.web.limits import client_network, limited, site_key

# RFC 6265: a cookie name is a token, any visible ASCII but separators.
COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
MAX_NAMES_PER_REPORT = 50
PATH_LENGTH = 255
OTHER_PAGES = "*"

bp = Blueprint("undeclared", __name__, url_prefix="/api/v1")
bp.after_request(cors_headers)


def _cookie_name(value: str) -> None:
    if not COOKIE_NAME.fullmatch(value):
        raise ValidationError("must be a cookie name: 1-64 characters, no separators or spaces")


def _page_path(value: str) -> None:
    if not value.startswith("/") or value.startswith("//"):
        raise ValidationError("must be a path on the site, like /products/42")


class UndeclaredReportSchema(Schema):
    """The body of ``POST /api/v1/sites/<site>/undeclared``."""

    names = fields.List(
        fields.String(validate=_cookie_name, metadata={"pattern": f"^{COOKIE_NAME.pattern}$"}),
        required=True,
        validate=validate.Length(1, MAX_NAMES_PER_REPORT),
    )
    page_path = fields.String(required=True, validate=[validate.Length(1, 2048), _page_path])
    revision = fields.Integer(required=True, strict=True, validate=validate.Range(1))


REPORT_SCHEMA = UndeclaredReportSchema()


def declared_as(site: Site, name: str) -> Cookie | None:
    """The inventory's first entry that declares ``name`` (exactly, by prefix or by pattern), if any."""
    return next((cookie for cookie in site.cookies if cookie.matches(name)), None)


def is_declared(site: Site, name: str) -> bool:
    """Whether the inventory declares ``name``; the banner's own cookie always is."""
    return name == CONSENT_COOKIE or declared_as(site, name) is not None


def _paths_by_name(site: str, names: list[str]) -> dict[str, set[str]]:
    rows = db.session.execute(
        select(UndeclaredCookie.name, UndeclaredCookie.page_path).where(
            UndeclaredCookie.site == site, UndeclaredCookie.name.in_(names)
        )
    )
    known: dict[str, set[str]] = {}
    for name, path in rows:
        known.setdefault(name, set()).add(path)
    return known


def record_report(site: Site, names: list[str], page_path: str) -> int:
    """Count the undeclared ``names`` seen on ``page_path``; return how many were kept."""
    wanted = sorted({name for name in names if not is_declared(site, name)})
    if not wanted:
        return 0
    path = urlsplit(page_path).path[:PATH_LENGTH] or "/"
    known = _paths_by_name(site.key, wanted)
    new_names = [name for name in wanted if name not in known]
    if new_names:
        stored = db.session.scalar(
            select(func.count(func.distinct(UndeclaredCookie.name))).where(UndeclaredCookie.site == site.key)
        )
        room = max(0, int(current_app.config["UNDECLARED_MAX_NAMES"]) - int(stored or 0))
        wanted = [name for name in wanted if name in known or name in new_names[:room]]
    if not wanted:
        return 0
    max_paths = int(current_app.config["UNDECLARED_MAX_PATHS"])
    now = utcnow()
    rows = []
    for name in wanted:
        paths = known.get(name, set())
        kept_path = path if path in paths or len(paths - {OTHER_PAGES}) < max_paths else OTHER_PAGES
        rows.append(
            {"site": site.key, "name": name, "page_path": kept_path, "reports": 1, "first_seen": now, "last_seen": now}
        )
    statement = dialect_insert(UndeclaredCookie).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["site", "name", "page_path"],
        set_={"reports": UndeclaredCookie.reports + 1, "last_seen": statement.excluded.last_seen},
    )
    db.session.execute(statement)
    db.session.commit()
    return len(wanted)


@bp.route("/sites/<site>/undeclared", methods=["POST", "OPTIONS"])
@limited(("RATELIMIT_UNDECLARED_PER_CLIENT", client_network), ("RATELIMIT_UNDECLARED_PER_SITE", site_key))
def report_undeclared(site: str) -> ResponseReturnValue:
    """Take a banner's report of undeclared cookie names on a page: 202 with how many were kept."""
    current = get_site(site)
    allow_origin(current, admin_may_omit=False)
    if request.method == "OPTIONS":
        return preflight("POST", "Content-Type")
    data = load_body(REPORT_SCHEMA, "undeclared-cookie report")
    kept = record_report(current, data["names"], data["page_path"])
    return {"kept": kept}, 202


@dataclass(frozen=True)
class Sighting:
    """One undeclared name on one page path (``*``: further pages), with its count and dates."""

    name: str
    page_path: str
    reports: int
    first_seen: datetime
    last_seen: datetime


def undeclared_cookies(site: Site, limit: int | None = None) -> list[Sighting]:
    """The site's undeclared names still missing from its inventory, most reported first."""
    query = (
        select(UndeclaredCookie)
        .where(UndeclaredCookie.site == site.key)
        .order_by(UndeclaredCookie.reports.desc(), UndeclaredCookie.name, UndeclaredCookie.page_path)
    )
    found = []
    for row in db.session.scalars(query):
        if is_declared(site, row.name):
            continue  # declared since it was reported
        found.append(Sighting(row.name, row.page_path, row.reports, row.first_seen, row.last_seen))
        if limit is not None and len(found) >= limit:
            break
    return found


@click.command("undeclared")
@click.option("--site", required=True, help="The site key.")
@with_appcontext
def undeclared_command(site: str) -> None:
    """List the cookies visitors carry that the site's inventory does not declare."""
    if site not in sites():
        raise click.ClickException(f"unknown site {site!r} (known: {', '.join(sorted(sites()))})")
    found = undeclared_cookies(sites()[site])
    if not found:
        click.echo(f"site {site}: no undeclared cookies reported")
        return
    click.echo(f"{'name':<32}  {'page':<32}  {'reports':>7}  {'first seen':<16}  last seen")
    for seen in found:
        first, last = (moment.strftime("%Y-%m-%d %H:%M") for moment in (seen.first_seen, seen.last_seen))
        click.echo(f"{seen.name:<32}  {seen.page_path:<32}  {seen.reports:>7}  {first:<16}  {last}")


def _document(spec: APISpec) -> None:
    """Add the report endpoint to the service's OpenAPI description."""
    spec.components.schema("UndeclaredReport", schema=UndeclaredReportSchema)
    kept = {"type": "object", "required": ["kept"], "properties": {"kept": {"type": "integer", "minimum": 0}}}
    spec.components.schema("UndeclaredKept", kept)
    body = {"required": True, "content": {"application/json": {"schema": "UndeclaredReport"}}}
    spec.path(
        path="/api/v1/sites/{site}/undeclared",
        parameters=[SITE],
        operations={
            "post": {
                "summary": "Report cookie names a page carries that the inventory does not declare",
                "description": "Sent by the banner (text/plain JSON, an Origin declared by the site), at most "
                "once per visitor and revision. Declared names are ignored; at most UNDECLARED_MAX_NAMES "
                "names are kept per site.",
                "requestBody": body,
                "responses": {
                    **ok_response("Counted; kept says how many names were kept", "UndeclaredKept", 202),
                    **error_responses(400, 403, 404, 413, 415, 422, 429, 503),
                },
            }
        },
    )


def init_app(app: Flask) -> None:
    """The report endpoint, its limits and caps, its OpenAPI entry and ``consent undeclared``."""
    app.register_blueprint(bp)
    app.cli.add_command(undeclared_command)
    app.extensions.setdefault("consent.api.openapi", []).append(_document)
