"""The scan's report: leaks, undeclared names, declared names never seen, and suggestions; as text, JSON and YAML.

A *leak* is anything outside ``necessary`` stored or contacted before a choice
or after a refusal: a declared cookie or key of another category, an
undeclared one the knowledge base does not know as necessary, or a request to
a host outside the site's origins (the consent service itself and hosts given
with ``--allow-host`` excepted). The banner's own cookie and storage keys are
necessary.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from consent.embed.undeclared import declared_as
from consent.inventory.expiry import expiry_for_lifetime
from consent.inventory.sites import CONSENT_COOKIE, Site
from consent.scan.crawl import CrawlResult, Item
from consent.scan.knowledge import Known, lookup
from consent.timestamps import iso

BEFORE_CHOICE = ("none", "reject")
PASS_LABELS = {"none": "before a choice", "reject": "after Reject all", "accept": "after Accept all"}
KIND_LABELS = {
    "cookie": "cookie",
    "local_storage": "local storage",
    "session_storage": "session storage",
    "indexeddb": "IndexedDB",
    "request": "request to",
}
# The banner keeps its queue, proof and report flag under this prefix (static/banner.js).
BANNER_STORAGE = "consent."


def path_of(url: str) -> str:
    return urlsplit(url).path or "/"


class Sightings:
    """Every item seen, once per kind, name and place, with the pages of each pass it was seen in."""

    def __init__(self, crawl: CrawlResult) -> None:
        self.items: dict[tuple[str, str, str], dict[str, Any]] = {}
        for result in crawl.passes:
            for item in result.items:
                key = (item.kind, item.name, item.where)
                entry = self.items.setdefault(key, {"item": item, "passes": {}})
                pages = entry["passes"].setdefault(result.name, [])
                if path_of(result.page) not in pages:
                    pages.append(path_of(result.page))

    def __iter__(self) -> Any:
        return iter(sorted(self.items.values(), key=lambda e: (e["item"].kind, e["item"].name, e["item"].where)))


def _banner_own(item: Item) -> bool:
    if item.kind == "cookie":
        return item.name == CONSENT_COOKIE
    return item.kind in ("local_storage", "session_storage") and item.name.startswith(BANNER_STORAGE)


def _category(site: Site, item: Item, knowledge: list[Known], allowed: set[str]) -> tuple[str | None, bool]:
    """(category or None if unknown, declared) of what was seen."""
    if item.kind == "request":
        return ("necessary" if item.name in allowed else None), False
    if _banner_own(item):
        return "necessary", True
    declared = declared_as(site, item.name)
    if declared is not None:
        return declared.category, True
    known = lookup(knowledge, item.name)
    return (known.cookie.category if known else None), False


def _entry(item: Item, passes: dict[str, list[str]], category: str | None, declared: bool) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "name": item.name,
        "where": item.where,
        "category": category,
        "declared": declared,
        "passes": passes,
        **{key: value for key, value in item.attributes.items() if key not in ("domain", "origin")},
    }


def build_report(
    site: Site,
    crawl: CrawlResult,
    knowledge: list[Known],
    *,
    started_at: datetime,
    max_pages: int,
    max_seconds: float,
    allowed_hosts: Iterable[str] = (),
) -> dict[str, Any]:
    """The report as a JSON-ready document."""
    allowed = set(allowed_hosts) | crawl.service_origins
    seen, leaks, undeclared = [], [], []
    for entry in Sightings(crawl):
        item, passes = entry["item"], entry["passes"]
        category, declared = _category(site, item, knowledge, allowed)
        described = _entry(item, passes, category, declared)
        seen.append(described)
        if category != "necessary" and any(name in passes for name in BEFORE_CHOICE):
            leaks.append(described)
        if item.kind != "request" and not declared:
            undeclared.append(described)
    names = {entry["name"] for entry in seen if entry["kind"] != "request"}
    never_seen = [
        {"name": cookie.name, "match": cookie.match, "category": cookie.category, "provider": cookie.provider}
        for cookie in site.cookies
        if not any(cookie.matches(name) for name in names)
    ]
    return {
        "site": site.key,
        "started_at": iso(started_at),
        "elapsed_seconds": round(crawl.elapsed, 2),
        "bounds": {"max_pages": max_pages, "max_seconds": max_seconds, "stopped": crawl.stopped},
        "pages": [path_of(page) for page in crawl.pages],
        "passes": len(crawl.passes),
        "errors": [
            {"page": path_of(result.page), "pass": result.name, "error": result.error}
            for result in crawl.passes
            if result.error
        ],
        "leaks": leaks,
        "undeclared": undeclared,
        "declared_never_seen": never_seen,
        "suggestions": suggestions(site, undeclared, knowledge),
        "seen": seen,
    }


def _provider(entry: dict[str, Any], site: Site) -> str:
    host = urlsplit(entry.get("set_by") or "").hostname or entry["where"].lstrip(".")
    host = urlsplit(host).hostname or host
    first_party = any(urlsplit(origin).hostname == host for origin in site.origins)
    return f"{site.name} (first party)" if first_party else host


def suggestions(site: Site, undeclared: list[dict[str, Any]], knowledge: list[Known]) -> list[dict[str, Any]]:
    """A draft inventory entry for each undeclared name, from the knowledge and the observed lifetime."""
    language = site.default_language
    drafts: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in undeclared:
        known = lookup(knowledge, entry["name"])
        review = []
        if entry["kind"] == "cookie":
            expiry = expiry_for_lifetime(entry.get("lifetime_seconds")).text()
        elif entry["kind"] == "session_storage":
            expiry = "session"
        elif known is not None and known.lifetime is not None:
            expiry = known.lifetime.text()
        else:
            expiry = "1 year"  # kept until cleared: the owner states how long it is used
            review.append("expiry")
        if known is None:
            review += ["category", "purpose"]
        elif language != "en":
            review.append("purpose")  # the knowledge is written in English
        name, match = (
            (known.cookie.name, known.cookie.match)
            if known and known.cookie.match != "exact"
            else (
                entry["name"],
                "exact",
            )
        )
        if (name, match) in drafts:
            continue
        set_by = entry.get("set_by") or entry["where"]
        drafts[(name, match)] = {
            "name": name,
            "match": match,
            "category": known.cookie.category if known else "functional",
            "provider": known.cookie.provider if known else _provider(entry, site),
            "purpose": {language: known.cookie.purpose["en"] if known else f"Set by {set_by}: describe what it does."},
            "expiry": expiry,
            "source": known.source if known else "observed",
            "seen_as": KIND_LABELS[entry["kind"]],
            "review": review,
        }
    return sorted(drafts.values(), key=lambda draft: draft["name"])


def write_yaml_draft(report: dict[str, Any], out: TextIO) -> None:
    """The suggestions as entries to review and merge under ``cookies:`` in the site's inventory."""
    entries = CommentedSeq()
    for index, draft in enumerate(report["suggestions"]):
        entry = CommentedMap()
        entry["name"] = draft["name"]
        if draft["match"] != "exact":
            entry["match"] = draft["match"]
        for key in ("category", "provider", "purpose", "expiry"):
            entry[key] = draft[key]
        entries.append(entry)
        note = f"{draft['seen_as']}, from the {draft['source']}"
        if draft["review"]:
            note += "; review the " + ", ".join(draft["review"])
        entries.yaml_set_comment_before_after_key(index, before=note, indent=2)
    document = CommentedMap(cookies=entries)
    document.yaml_set_start_comment(
        f"Draft cookies for site {report['site']} from the scan of {report['started_at']}.\n"
        "Review each entry, then add it under `cookies:` in the site's inventory and run `consent check`."
    )
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump(document, out)


def _describe(entry: dict[str, Any]) -> str:
    where = "; ".join(f"{PASS_LABELS[name]} on {', '.join(pages)}" for name, pages in entry["passes"].items())
    category = entry["category"] or "unknown category"
    status = "declared" if entry["declared"] else "undeclared"
    setter = f"; set by {entry['set_by']}" if entry.get("set_by") else ""
    return f"  {KIND_LABELS[entry['kind']]} {entry['name']} ({entry['where']}) [{category}, {status}]: {where}{setter}"


def render_text(report: dict[str, Any]) -> str:
    """The report for a person at a terminal."""
    out = io.StringIO()
    bounds = report["bounds"]
    stop = f", stopped by {bounds['stopped']}" if bounds["stopped"] else ""
    out.write(
        f"Scan of site {report['site']}: {len(report['pages'])} pages, {report['passes']} passes "
        f"in {report['elapsed_seconds']} s{stop}\n"
    )
    for error in report["errors"]:
        out.write(f"  could not finish {error['page']} ({PASS_LABELS[error['pass']]}): {error['error']}\n")
    out.write(f"\nLeaks: {len(report['leaks'])} (outside necessary, before a choice or after a refusal)\n")
    out.writelines(_describe(entry) + "\n" for entry in report["leaks"])
    out.write(f"\nUndeclared: {len(report['undeclared'])}\n")
    out.writelines(_describe(entry) + "\n" for entry in report["undeclared"])
    out.write(f"\nDeclared but never seen: {len(report['declared_never_seen'])}\n")
    for cookie in report["declared_never_seen"]:
        out.write(f"  {cookie['name']} ({cookie['match']}, {cookie['category']}, {cookie['provider']})\n")
    out.write(f"\nSuggestions: {len(report['suggestions'])} (write them as YAML with --yaml-draft FILE)\n")
    for draft in report["suggestions"]:
        review = f"; review the {', '.join(draft['review'])}" if draft["review"] else ""
        out.write(
            f"  {draft['name']} ({draft['match']}): {draft['category']}, {draft['provider']}, "
            f"{draft['expiry']} [{draft['source']}{review}]\n"
        )
    return out.getvalue()
