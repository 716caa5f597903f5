"""The one canonical encoding of a consent record: the bytes its leaf hash is taken over.

The entry is the JSON array of the fields below, in this order, compact
(``,`` and ``:`` without spaces), non-ASCII characters as themselves (UTF-8),
``recorded_at`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, booleans as ``true``/``false``
and ``revision`` as an integer. Its leaf hash, ``SHA-256(0x00 || entry)``, is
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
BOOLEAN_FIELDS = frozenset((*CATEGORIES, "gpc", "dnt"))
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
    return CANONICAL_JSON.encode(content).encode()


def record_hash(values: dict[str, Any]) -> str:
    """The record's leaf hash, hex: SHA-256 over 0x00 and its canonical bytes."""
    return hashlib.sha256(b"\x00" + entry(values)).hexdigest()
