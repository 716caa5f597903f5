"""Inventory files the tests serve: the demo's (or another file's) with some keys changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

DEMO = Path(__file__).resolve().parents[2] / "cookies.yaml"


def site_document(source: Path = DEMO, **changes: Any) -> Any:
    """An inventory file's content, with ``changes`` applied to its top-level keys."""
    document = YAML(typ="rt").load(source.read_text(encoding="utf-8"))
    document.update(changes)
    return document


def write_site(target: Path, source: Path = DEMO, **changes: Any) -> str:
    """Write ``source`` (by default the demo inventory) to ``target`` with ``changes``; return its site key."""
    return write_document(target, site_document(source, **changes))


def write_document(target: Path, document: Any) -> str:
    """Write an inventory document to ``target``; return its site key."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        YAML(typ="rt").dump(document, out)
    return str(document["site"])
