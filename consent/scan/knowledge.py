"""What the scanner knows about common cookies: its own knowledge base and the Open Cookie Database's CSV.

Entries are matched with the inventory's own matcher (``Cookie.matches``), so
a name, prefix or pattern means here what it means in ``cookies.yaml``. The
first entry that matches wins; entries from ``--knowledge FILE`` come before
the built-in ones, so a file the user downloaded can correct them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from consent.inventory.expiry import Expiry, parse_expiry
from consent.inventory.sites import Cookie
from consent.inventory.texts import CATEGORIES

BUILT_IN = Path(__file__).resolve().parent / "knowledge.yaml"
# Storage that lasts until it is cleared (local storage, IndexedDB): no lifetime to declare.
KEPT = "kept"
# The Open Cookie Database's columns, in its order; the file may carry more.
OCD_COLUMNS = (
    "ID",
    "Platform",
    "Category",
    "Cookie / Data Key name",
    "Domain",
    "Description",
    "Retention period",
    "Data Controller",
    "User Privacy & GDPR Rights Portals",
    "Wildcard match",
)
# Its categories, as this project names them.
OCD_CATEGORIES = {
    "functional": "functional",
    "preferences": "functional",
    "personalization": "functional",
    "analytics": "analytics",
    "marketing": "advertising",
    "advertising": "advertising",
    "security": "necessary",
    "necessary": "necessary",
}


class KnowledgeError(Exception):
    """A knowledge file cannot be read; the message names the file and, where known, the line."""


@dataclass(frozen=True)
class Known:
    """What is known about one cookie name or pattern, and where that came from."""

    cookie: Cookie
    lifetime: Expiry | None  # None: kept until cleared, or not known
    source: str

    def matches(self, name: str) -> bool:
        return self.cookie.matches(name)


def _known(name: str, match: str, category: str, provider: str, purpose: str, expiry: str | None, source: str) -> Known:
    lifetime = None if expiry in (None, KEPT) else parse_expiry(expiry)
    cookie = Cookie(name, match, category, provider, {"en": purpose}, lifetime or parse_expiry("session"))
    return Known(cookie, lifetime, source)


def load_built_in(path: Path = BUILT_IN) -> list[Known]:
    """The project's own knowledge base; an error names the file and line."""
    try:
        entries = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as error:
        raise KnowledgeError(f"{path}: {error}") from error
    found = []
    for index, entry in enumerate(entries):
        line = entries.lc.item(index)[0] + 1
        try:
            if entry["category"] not in CATEGORIES:
                raise ValueError(f"unknown category {entry['category']!r}")
            found.append(
                _known(
                    str(entry["name"]),
                    str(entry.get("match", "exact")),
                    entry["category"],
                    str(entry["provider"]),
                    str(entry["purpose"]),
                    str(entry["expiry"]),
                    "knowledge base",
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise KnowledgeError(f"{path}:{line}: {error}") from error
    return found


def _retention(text: str) -> str | None:
    """The Open Cookie Database's retention text as an expiry, or None when it is not one ("persistent")."""
    text = text.strip().lower()
    if text in ("session", "browser session"):
        return "session"
    try:
        parse_expiry(text)
    except ValueError:
        return None
    return text


def load_open_cookie_database(path: Path) -> list[Known]:
    """Entries of a CSV in the Open Cookie Database's layout; a file without its columns is refused."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = list(csv.DictReader(file))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise KnowledgeError(f"{path}: cannot read: {error}") from error
    missing = [column for column in OCD_COLUMNS if column not in header]
    if missing:
        raise KnowledgeError(f"{path}:1: not an Open Cookie Database CSV: no column {missing[0]!r}")
    found = []
    for line, row in enumerate(rows, start=2):
        name = (row["Cookie / Data Key name"] or "").strip()
        category = OCD_CATEGORIES.get((row["Category"] or "").strip().lower())
        if not name or category is None:
            continue  # a category this project has no place for: no suggestion rather than a wrong one
        match = "prefix" if (row["Wildcard match"] or "").strip() == "1" else "exact"
        provider = (row["Platform"] or row["Data Controller"] or "unknown").strip()
        expiry = _retention(row["Retention period"] or "")
        purpose = (row["Description"] or "").strip() or f"See {provider}."
        found.append(_known(name, match, category, provider, purpose, expiry, f"{path.name}:{line}"))
    return found


def load_knowledge(extra: Path | None = None) -> list[Known]:
    """The entries to suggest from: ``extra`` (an Open Cookie Database CSV) first, then the built-in ones."""
    return [*(load_open_cookie_database(extra) if extra else []), *load_built_in()]


def lookup(knowledge: list[Known], name: str) -> Known | None:
    """The first entry that matches ``name``."""
    return next((entry for entry in knowledge if entry.matches(name)), None)
