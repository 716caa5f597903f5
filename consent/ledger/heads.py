"""Signed tree heads: after each seal, the root of the site's tree, signed with the ledger key.

A head is the statement ``{"type": "consent/tree-head/v1", "site", "tree_size",
"root_hash", "timestamp"}`` with ``key_id`` and ``signature`` (see
consent.ledger.signing). Heads are published, carried in visitors' proofs and
collected by witnesses: once anyone outside the database holds a head, the log
cannot be rewritten behind it without the rewrite showing.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from consent.ledger.keys import private_key
from consent.ledger.signing import TREE_HEAD, sign
from consent.store.models import LedgerHead, db
from consent.timestamps import iso, to_ms, utcnow

CACHE_FOR = 1.0  # seconds a process answers with the newest head it read, instead of reading again
_newest: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}


def as_json(row: LedgerHead) -> dict[str, Any]:
    """A stored head as published."""
    return {
        "type": TREE_HEAD,
        "site": row.site,
        "tree_size": row.tree_size,
        "root_hash": row.root_hash,
        "timestamp": iso(row.timestamp),
        "key_id": row.key_id,
        "signature": row.signature,
    }


def sign_head(site: str, size: int, root_hash: bytes) -> LedgerHead:
    """Sign the head of ``site``'s tree at ``size`` leaves and add it to the session (the caller commits)."""
    now = to_ms(utcnow())
    statement = {
        "type": TREE_HEAD,
        "site": site,
        "tree_size": size,
        "root_hash": root_hash.hex(),
        "timestamp": iso(now),
    }
    signed = sign(private_key(), statement)
    row = LedgerHead(
        site=site,
        tree_size=size,
        root_hash=statement["root_hash"],
        timestamp=now,
        key_id=signed["key_id"],
        signature=signed["signature"],
    )
    db.session.add(row)
    db.session.flush()
    return row


def latest(site: str) -> LedgerHead | None:
    """The site's newest head."""
    return db.session.scalars(
        select(LedgerHead).where(LedgerHead.site == site).order_by(LedgerHead.tree_size.desc()).limit(1)
    ).first()


def at_size(site: str, size: int) -> LedgerHead | None:
    return db.session.scalars(select(LedgerHead).where(LedgerHead.site == site, LedgerHead.tree_size == size)).first()


def heads(site: str) -> list[dict[str, Any]]:
    """Every head of ``site``, smallest first, as published."""
    rows = db.session.scalars(select(LedgerHead).where(LedgerHead.site == site).order_by(LedgerHead.tree_size))
    return [as_json(row) for row in rows]


def recent(site: str) -> dict[str, Any] | None:
    """The newest head as this process last read it, at most ``CACHE_FOR`` seconds ago (for receipts)."""
    key = (str(db.engine.url), site)
    now = time.monotonic()
    cached = _newest.get(key)
    if cached is not None and now - cached[0] < CACHE_FOR:
        return cached[1]
    row = latest(site)
    head = as_json(row) if row is not None else None
    _newest[key] = (now, head)
    return head


def remember(head: LedgerHead) -> None:
    """A head this process just signed is the newest: receipts carry it from now on."""
    _newest[(str(db.engine.url), head.site)] = (time.monotonic(), as_json(head))
