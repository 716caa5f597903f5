"""The compliance export: one site's records in a time range under one signed head, streamed in constant memory.

``consent export`` and ``GET /api/v1/sites/<site>/export`` write the same
bytes: a plain table (CSV with one header row, JSON Lines, or ISO/IEC TS 27560
records), oldest first, and nothing else. The proof travels beside it
(``--proof``, ``format=proof``) or with it in a zip (``--bundle``,
``format=bundle``). Everything is read in one snapshot of the database.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from time import perf_counter
from typing import Any

import click
from flask import Blueprint, Flask, Response, request, stream_with_context
from flask.typing import ResponseReturnValue

from consent.dashboard.users import is_logged_in
from consent.export.bundle import README, inventories, zip_stream
from consent.export.formats import csv_header
from consent.export.iso27560 import AddressUnknown, record_builder, service_address
from consent.export.source import ExportSource
from consent.inventory.sites import Site, get_site, sites
from consent.timestamps import parse_iso
from consent.web.auth import require_admin
from consent.web.errors import ApiError
from consent.web.metrics import EXPORT_DURATION

FORMATS = ("csv", "jsonl", "iso27560")
HTTP_FORMATS = (*FORMATS, "proof", "bundle")
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "iso27560": "jsonl", "proof": "proof.json", "bundle": "zip"}
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl",
    "iso27560": "application/jsonl",
    "proof": "application/json",
    "bundle": "application/zip",
}
TREE_SIZE_HEADER = "X-Consent-Tree-Size"
PROGRESS_EVERY = 100_000

bp = Blueprint("export", __name__, url_prefix="/api/v1")
Progress = Callable[[int], None]


def parse_moment(value: str | None, name: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC when it names no zone); ValueError if neither."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), UTC)
        return parse_iso(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{name}: {value!r} is not a date (2026-11-21) or an ISO 8601 date-time in range") from None


def records(source: ExportSource, site: Site, fmt: str, progress: Progress | None = None) -> Iterator[bytes]:
    """The export file of the source's records as ``fmt``: chunks of bytes; ``progress`` hears the row count."""
    started = perf_counter()
    if fmt == "csv":
        yield csv_header()
    count, reported = 0, 0
    builder = record_builder(site, source.session) if fmt == "iso27560" else None
    for chunk, rows in source.chunks(fmt, builder):
        yield chunk
        count += rows
        if progress is not None and count - reported >= PROGRESS_EVERY:
            progress(count)
            reported = count
    if progress is not None:
        progress(count)
    EXPORT_DURATION.labels(site.key, fmt).observe(perf_counter() - started)


def bundle(source: ExportSource, site: Site, progress: Progress | None = None) -> Iterator[bytes]:
    """The audit bundle of the source's records: a zip, as chunks of bytes."""
    scope = source.range
    readme = README.format(
        site=site.key,
        tree_size=scope.head.tree_size if scope.head is not None else 0,
        first_index=scope.first_index,
        end_index=scope.end_index,
    )
    entries: list[tuple[str, Callable[[], Any]]] = [
        ("records.csv", lambda: records(source, site, "csv", progress)),
        ("records.jsonl", lambda: records(source, site, "jsonl")),
        ("proof.json", lambda: source.proof("bundle")),
    ]
    entries += [(name, functools.partial(list, [content])) for name, content in inventories(source.session, site.key)]
    entries.append(("README.txt", lambda: [readme.encode()]))
    return zip_stream(entries)


def export_body(
    source: ExportSource, site: Site, fmt: str, progress: Progress | None = None, proves: str = "csv"
) -> Iterator[bytes]:
    """What ``fmt`` asks for: the records, the bundle, or the proof of the records exported as ``proves``."""
    if fmt == "proof":
        return source.proof(proves)
    if fmt == "bundle":
        return bundle(source, site, progress)
    return records(source, site, fmt, progress)


def _closing(source: ExportSource, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        source.close()


def export_filename(site: Site, fmt: str, since: datetime | None, until: datetime | None) -> str:
    span = "-".join(moment.strftime("%Y%m%d") for moment in (since, until) if moment is not None)
    return f"consent-{site.key}{'-' + span if span else ''}.{EXTENSIONS[fmt]}"


def open_source(site: str, since: datetime | None, until: datetime | None, tree_size: int | None) -> ExportSource:
    """The export's snapshot, opened; ValueError (closed again) if no head has ``tree_size`` leaves."""
    source = ExportSource(site, since, until, tree_size).open()
    if tree_size is not None and source.range.head is None:
        source.close()
        raise ValueError(f"no signed tree head of {site} has {tree_size} leaves")
    return source


def _tree_size(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValueError("must be a whole number: the tree_size of a signed head")
    return int(value)


@bp.get("/sites/<site>/export")
def export_view(site: str) -> ResponseReturnValue:
    """Stream the site's compliance export or its proof (admin): ``?format=&since=&until=&tree_size=&proves=``."""
    if not is_logged_in():
        require_admin()
    current = get_site(site)
    fmt = request.args.get("format", "csv")
    errors: dict[str, list[str]] = {}
    if fmt not in HTTP_FORMATS:
        errors["format"] = [f"must be one of {', '.join(HTTP_FORMATS)}"]
    proves = request.args.get("proves", "csv")
    if proves not in FORMATS:
        errors["proves"] = [f"must be one of {', '.join(FORMATS)}: the format of the file the proof is for"]
    moments: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        try:
            moments[name] = parse_moment(request.args.get(name), name)
        except ValueError as error:
            errors[name] = [str(error)]
    try:
        tree_size = _tree_size(request.args.get("tree_size"))
    except ValueError as error:
        errors["tree_size"] = [str(error)]
    if errors:
        raise ApiError(422, "invalid export parameters", errors)
    try:
        source = open_source(current.key, moments["since"], moments["until"], tree_size)
    except ValueError as error:
        raise ApiError(422, "invalid export parameters", {"tree_size": [str(error)]}) from None
    body = _closing(source, export_body(source, current, fmt, proves=proves))
    response = Response(stream_with_context(body), mimetype=MEDIA_TYPES[fmt])
    response.call_on_close(source.close)  # also when the body is never read
    filename = export_filename(current, fmt, moments["since"], moments["until"])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers[TREE_SIZE_HEADER] = str(source.range.head.tree_size if source.range.head is not None else 0)
    return response


class MomentType(click.ParamType):
    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime | None:
        try:
            return parse_moment(value, f"--{param.name if param else 'date'}")
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _report_scope(source: ExportSource, site: str) -> None:
    """Say on stderr what the export leaves out: records newer than its head, or everything if there is none."""
    head = source.range.head
    if head is None:
        message = f"{site}: no signed tree head yet, so the export holds no records; `consent seal` seals them"
        click.echo(message, err=True)
        return
    left_out = source.left_out()
    if left_out:
        click.echo(
            f"{site}: {left_out} records newer than the signed head of {head.tree_size} leaves are left out; "
            "`consent seal` seals them",
            err=True,
        )


@click.command("export")
@click.option("--site", "site_key", required=True, help="The site's key.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option("--since", type=MomentType(), help="From this date or ISO date-time (UTC), inclusive.")
@click.option("--until", type=MomentType(), help="Up to this date or ISO date-time (UTC), exclusive.")
@click.option("--tree-size", type=click.IntRange(min=0), help="Cut at the head of this size (default: newest).")
@click.option("-o", "--output", type=click.File("wb", lazy=False), help="File to write; stdout by default.")
@click.option(
    "--proof", "proof_file", type=click.File("wb", lazy=False), help="Also write the detached proof to this file."
)
@click.option(
    "--bundle", "bundle_file", type=click.File("wb", lazy=False), help="Write the audit bundle (zip) here instead."
)
def export_command(
    site_key: str,
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    tree_size: int | None,
    output: Any,
    proof_file: Any,
    bundle_file: Any,
) -> None:
    """Write a site's compliance export (and its proof, or a bundle), with progress on stderr."""
    current = sites().get(site_key)
    if current is None:
        raise click.BadParameter(f"unknown site {site_key!r}", param_hint="--site")
    if bundle_file is not None and (output is not None or proof_file is not None):
        raise click.UsageError("--bundle holds the records and the proof: give it without -o and --proof")
    if fmt == "iso27560" and bundle_file is None:
        try:
            service_address(current)
        except AddressUnknown as error:
            raise click.UsageError(str(error)) from None
    try:
        source = open_source(current.key, since, until, tree_size)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--tree-size") from None

    def progress(count: int) -> None:
        click.echo(f"{count} records exported", err=True)

    with source:
        _report_scope(source, current.key)
        target = bundle_file or output or click.get_binary_stream("stdout")
        for chunk in export_body(source, current, "bundle" if bundle_file is not None else fmt, progress):
            target.write(chunk)
        if proof_file is not None:  # from the same snapshot as the records
            for chunk in export_body(source, current, "proof", proves=fmt):
                proof_file.write(chunk)


def init_app(app: Flask) -> None:
    """Register the export route's blueprint, its OpenAPI description and the ``consent export`` command."""
    from consent.export import openapi  # the web service only: ``consent export`` starts without it

    app.register_blueprint(bp)
    app.extensions.setdefault("consent.api.openapi", []).append(openapi.document)
    init_commands(app)


def init_commands(app: Flask) -> None:
    """Register ``consent export`` alone, for the bulk app that serves no routes."""
    app.cli.add_command(export_command)
