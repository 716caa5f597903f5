"""The one canonical encoding of a consent record: the bytes its leaf hash is taken over.

The entry is the JSON array of the fields below, in this order, compact
(``,`` and ``:`` without spaces), non-ASCII characters as themselves (UTF-8),
``recorded_at`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, booleans as ``true``/``false``
and ``revision`` as an integer. A record that carries the regime applied, the
region and the ``Sec-GPC`` the server saw (``REGIONAL_FIELDS``) has those three
appended (the region may be ``null``); one without them, as every record written
before regions existed, is encoded as it always was. Its leaf hash, ``SHA-256(0x00 || entry)``, is
the record's ``record_hash``. Recording, the exports, the live verify and the
offline verifier all use these definitions (the SQL that the exports and the
live verify run is built from them too).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from consent.timestamps import iso

CATEGORIES = ("necessary", "functional", "analytics", "advertising")
HASHED_FIELDS = (
    "site", "consent_id", "recorded_at", "action", *CATEGORIES, "revision",
    "inventory_hash", "language", "page_url", "ip", "user_agent", "gpc", "dnt",
)  # fmt: skip
# Appended only to a record that has them (any of the three not None), so older hashes stay valid.
REGIONAL_FIELDS = ("regime", "region", "sec_gpc")
# Every field a record's hash covers, for reading them off a stored record.
ENTRY_FIELDS = (*HASHED_FIELDS, *REGIONAL_FIELDS)
BOOLEAN_FIELDS = frozenset((*CATEGORIES, "gpc", "dnt", "sec_gpc"))
INTEGER_FIELDS = frozenset(("revision",))
# What json.dumps(value, separators=(",", ":"), ensure_ascii=False) writes, without a new encoder per call.
CANONICAL_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def entry(values: dict[str, Any]) -> bytes:
    """The canonical bytes of a record (``recorded_at`` a datetime or already its ``iso`` text)."""
    moment = values["recorded_at"]
    content = [
        (moment if isinstance(moment, str) else iso(moment)) if name == "recorded_at" else values[name]
        for name in HASHED_FIELDS
    ]
    regional = [values.get(name) for name in REGIONAL_FIELDS]
    if any(value is not None for value in regional):
        content.extend(regional)
    return CANONICAL_JSON.encode(content).encode()


def record_hash(values: dict[str, Any]) -> str:
    """The record's leaf hash, hex: SHA-256 over 0x00 and its canonical bytes."""
    return hashlib.sha256(b"\x00" + entry(values)).hexdigest()
