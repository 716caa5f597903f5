"""The compliance export: one site's records in a time range, streamed in constant memory.

``consent export`` and ``GET /api/v1/sites/<site>/export`` write the same
bytes: the rows (CSV with a header, JSON Lines, or ISO/IEC TS 27560 records),
oldest first, then the ledger entries that make the file verifiable on its
own, then a signed summary. Everything is read in one snapshot of the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from time import perf_counter
from typing import Any

import click
from flask import Blueprint, Flask, Response, request, stream_with_context
from flask.typing import ResponseReturnValue

from consent.auth import require_admin
from consent.errors import ApiError
from consent.export.formats import csv_header
from consent.export.source import ExportSource
from consent.inventory import Site, get_site, sites
from consent.metrics import EXPORT_DURATION
from consent.models import utcnow
from consent.users import is_logged_in

FORMATS = ("csv", "jsonl", "iso27560")
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "iso27560": "jsonl"}
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl", "iso27560": "application/jsonl"}
PROGRESS_EVERY = 100_000

bp = Blueprint("export", __name__, url_prefix="/api/v1")


def parse_moment(value: str | None, name: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC when it names no zone); ValueError if neither."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        # 0001-01-01T00:00+01:00 and 9999-12-31T23:00-01:00 have no UTC time: OverflowError.
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{name}: {value!r} is not a date (2026-11-21) or an ISO 8601 date-time in range") from None


def stream_export(
    site: Site,
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The export file of ``site`` as chunks of bytes; ``progress`` hears the running row count."""
    started = perf_counter()
    with ExportSource(site.key, since, until) as source:
        if fmt == "csv":
            yield csv_header()
        count, reported = 0, 0
        for chunk, rows in source.chunks(fmt, site.public):
            yield chunk
            count += rows
            if progress is not None and count - reported >= PROGRESS_EVERY:
                progress(count)
                reported = count
        yield from source.trailer(fmt, count, utcnow())
        if progress is not None:
            progress(count)
    EXPORT_DURATION.labels(site.key, fmt).observe(perf_counter() - started)


def export_filename(site: Site, fmt: str, since: datetime | None, until: datetime | None) -> str:
    span = "-".join(moment.strftime("%Y%m%d") for moment in (since, until) if moment is not None)
    return f"consent-{site.key}{'-' + span if span else ''}.{EXTENSIONS[fmt]}"


@bp.get("/sites/<site>/export")
def export_view(site: str) -> ResponseReturnValue:
    """Stream the site's compliance export (admin token or dashboard session): ``?format=&since=&until=``."""
    if not is_logged_in():
        require_admin()
    current = get_site(site)
    fmt = request.args.get("format", "csv")
    errors: dict[str, list[str]] = {}
    if fmt not in FORMATS:
        errors["format"] = [f"must be one of {', '.join(FORMATS)}"]
    moments: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        try:
            moments[name] = parse_moment(request.args.get(name), name)
        except ValueError as error:
            errors[name] = [str(error)]
    if errors:
        raise ApiError(422, "invalid export parameters", errors)
    body = stream_with_context(stream_export(current, fmt, moments["since"], moments["until"]))
    response = Response(body, mimetype=MEDIA_TYPES[fmt])
    filename = export_filename(current, fmt, moments["since"], moments["until"])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


class MomentType(click.ParamType):
    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime | None:
        try:
            return parse_moment(value, f"--{param.name if param else 'date'}")
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.command("export")
@click.option("--site", "site_key", required=True, help="The site's key.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option("--since", type=MomentType(), help="From this date or ISO date-time (UTC), inclusive.")
@click.option("--until", type=MomentType(), help="Up to this date or ISO date-time (UTC), exclusive.")
@click.option("-o", "--output", type=click.File("wb"), default="-", help="File to write; stdout by default.")
def export_command(site_key: str, fmt: str, since: datetime | None, until: datetime | None, output: Any) -> None:
    """Write a site's compliance export, with progress on stderr."""
    current = sites().get(site_key)
    if current is None:
        raise click.BadParameter(f"unknown site {site_key!r}", param_hint="--site")

    def progress(count: int) -> None:
        click.echo(f"{count} records exported", err=True)

    for chunk in stream_export(current, fmt, since, until, progress):
        output.write(chunk)


def init_app(app: Flask) -> None:
    """Register the export route's blueprint and the ``consent export`` command."""
    app.register_blueprint(bp)
    app.cli.add_command(export_command)
