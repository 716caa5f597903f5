"""``consent scan``: crawl a site in headless Chromium and hold what it stores and contacts against its inventory.

Exit status: 2 when something leaks (see consent.scan.report), 1 for a usage or
configuration error (named on stderr) or when no page could be scanned, 0 otherwise. The report goes to stdout,
``--json`` and ``--yaml-draft`` files, and the database (the dashboard shows the
newest scan of each site) unless ``--no-store``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from consent.inventory.sites import Site, sites
from consent.scan.knowledge import KnowledgeError, load_knowledge
from consent.store.models import SiteScan, db
from consent.timestamps import utcnow

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "consent scan needs Playwright for Python: pip install 'consent[scan]'"
LEAKS = 2


class ScanCommand(click.Command):
    """A command whose usage errors exit 1, since its exit status 2 means a leak."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            error.exit_code = 1
            raise


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _checked_urls(site: Site, urls: tuple[str, ...]) -> list[str]:
    origins = {origin.lower() for origin in site.origins}
    for url in urls:
        if not url.lower().startswith(("http://", "https://")) or _origin(url) not in origins:
            raise click.ClickException(
                f"{url!r} is not a page within the origins of site {site.key!r} ({', '.join(site.origins)})"
            )
    return list(urls)


class Progress:
    """A bar of pages on stderr: redrawn in place at a terminal, one line per page otherwise."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, url: str) -> None:
        filled = round(20 * done / self.total)
        bar = "#" * filled + "-" * (20 - filled)
        elapsed = time.monotonic() - self.started
        line = f"scan [{bar}] {done}/{self.total} pages, {elapsed:.0f} s" + (f"  {url}" if url else "")
        if self.tty:
            click.echo(f"\r\033[K{line}", err=True, nl=not url)
        else:
            click.echo(line, err=True)


def _write(path: Path | None, text: str) -> None:
    if path is None:
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"{path}: cannot write: {error}") from None


@click.command("scan", cls=ScanCommand)
@click.option("--site", "site_key", required=True, help="The site key; its inventory gives the origins.")
@click.argument("urls", nargs=-1, required=True)
@click.option("--max-pages", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Pages at most.")
@click.option("--max-seconds", type=click.FloatRange(1, 86_400), default=300, show_default=True, help="Time at most.")
@click.option("--chromium", type=click.Path(path_type=Path), default=DEBIAN_CHROMIUM, show_default=True)
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path), help="Write the report as JSON.")
@click.option("--yaml-draft", type=click.Path(dir_okay=False, path_type=Path), help="Write suggested entries as YAML.")
@click.option(
    "--knowledge", type=click.Path(dir_okay=False, path_type=Path), help="An Open Cookie Database CSV to suggest from."
)
@click.option("--allow-host", multiple=True, help="An origin contacted for necessary purposes (a CDN); repeatable.")
@click.option("--no-store", is_flag=True, help="Do not keep the report in the database for the dashboard.")
@with_appcontext
def scan_command(
    site_key: str,
    urls: tuple[str, ...],
    max_pages: int,
    max_seconds: float,
    chromium: Path,
    json_file: Path | None,
    yaml_draft: Path | None,
    knowledge: Path | None,
    allow_host: tuple[str, ...],
    no_store: bool,
) -> None:
    """Crawl the site in headless Chromium: what it stores and contacts before and after a choice."""
    site = sites().get(site_key)
    if site is None:
        raise click.ClickException(f"unknown site {site_key!r} (known: {', '.join(sorted(sites()))})")
    start_urls = _checked_urls(site, urls)
    try:
        entries = load_knowledge(knowledge)
    except KnowledgeError as error:
        raise click.ClickException(str(error)) from None
    if not os.access(chromium, os.X_OK):
        raise click.ClickException(f"no Chromium at {chromium}: install Debian's chromium or give --chromium PATH")
    try:
        from consent.scan.crawl import BrowserError, crawl
    except ImportError:
        raise click.ClickException(INSTALL_HINT) from None
    from consent.scan.report import build_report, render_text, write_yaml_draft

    if not no_store:
        _check_database()
    started_at = utcnow()
    try:
        result = crawl(
            site.key,
            start_urls,
            {origin.lower() for origin in site.origins},
            max_pages=max_pages,
            max_seconds=max_seconds,
            chromium=chromium,
            progress=Progress(max_pages),
        )
    except BrowserError as error:
        raise click.ClickException(str(error)) from None
    report = build_report(
        site,
        result,
        entries,
        started_at=started_at,
        max_pages=max_pages,
        max_seconds=max_seconds,
        allowed_hosts=[_origin(host) if "://" in host else host for host in allow_host],
    )
    _write(json_file, json.dumps(report, indent=2) + "\n")
    if yaml_draft is not None:
        draft = io.StringIO()
        write_yaml_draft(report, draft)
        _write(yaml_draft, draft.getvalue())
    if not no_store:
        _store(site.key, started_at, report)
    click.echo(render_text(report), nl=False)
    if report["leaks"]:
        sys.exit(LEAKS)
    if result.passes and all(one.error for one in result.passes):
        raise click.ClickException("no page could be scanned (see the errors above)")


def _check_database() -> None:
    """Refuse to start a crawl whose report could not be kept."""
    try:
        ready = inspect(db.engine).has_table(SiteScan.__tablename__)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise click.ClickException(f"cannot reach the database ({reason}); or pass --no-store") from None
    if not ready:
        raise click.ClickException("the database has no table for scans: run `consent db upgrade`, or pass --no-store")


def _store(site: str, started_at: Any, report: dict[str, Any]) -> None:
    from consent.scan.stored import store_scan

    try:
        store_scan(site, started_at, report)
    except SQLAlchemyError as error:
        reason = str(error.orig if hasattr(error, "orig") else error).splitlines()[0]
        raise click.ClickException(
            f"could not keep the scan in the database ({reason}); run `consent db upgrade`, or pass --no-store"
        ) from None


def init_app(app: Flask) -> None:
    """Register ``consent scan``."""
    app.cli.add_command(scan_command)
