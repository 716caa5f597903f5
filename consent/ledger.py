"""The tamper-evident ledger: leaves, signed checkpoints and the chain that links them.

A *leaf* is a record's fingerprint, 40 bytes::

    id (8) | recorded_at in ms since 1970 (8) | SHA-256(consent_id)[:8] | record_hash[:16]

A checkpoint's *root* is SHA-256 over its leaves in id order; its *digest* is
SHA-256 over its header as canonical JSON, which holds the previous
checkpoint's digest, so the checkpoints of a site form one chain; its
*signature* is an HMAC of the digest with the ledger key. Nobody without the
key can make a checkpoint that verifies.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, Signer
from sqlalchemy import func, select, text
from sqlalchemy.orm import defer

from consent import recording  # a module import: recording calls into sealing, which uses this module
from consent.models import LedgerCheckpoint, db, utcnow

LEAF = struct.Struct(">Qq8s16s")
LABEL_SIZE = 16
NO_LABEL = bytes(LABEL_SIZE)
GENESIS = "0" * 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HEADER_FIELDS = (
    "site", "seq", "kind", "after_id", "last_id", "leaf_count", "first_at", "last_at",
    "root", "previous", "signed_at", "detail",
)  # fmt: skip


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970 (UTC), exactly."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    """The UTC moment ``ms`` milliseconds after 1970."""
    return EPOCH + timedelta(milliseconds=ms)


def subject(consent_id: str) -> bytes:
    """The 8-byte fingerprint of a consent ID that a leaf carries."""
    return hashlib.sha256(consent_id.encode()).digest()[:8]


def label(consent_id: str) -> bytes:
    """A consent ID as 16 bytes for the (unsigned) labels beside the leaves."""
    try:
        return uuid.UUID(consent_id).bytes
    except ValueError:
        return NO_LABEL


def label_text(raw: bytes, fingerprint: bytes) -> str | None:
    """The consent ID a label holds, if it is there and matches the leaf's signed fingerprint."""
    if raw == NO_LABEL:
        return None
    consent_id = str(uuid.UUID(bytes=raw))
    return consent_id if subject(consent_id) == fingerprint else None


def pack_leaf(record_id: int, recorded_at: datetime, consent_id: str, record_hash: str) -> bytes:
    """The leaf of one record."""
    return LEAF.pack(record_id, epoch_ms(recorded_at), subject(consent_id), bytes.fromhex(record_hash[:32]))


def unpack_leaves(leaves: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """``(id, recorded_at ms, consent fingerprint, digest)`` for each leaf."""
    return list(LEAF.iter_unpack(leaves))


def leaves_root(leaves: bytes) -> str:
    return hashlib.sha256(leaves).hexdigest()


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Checkpoint:
    """A checkpoint as stored or exported: header (timestamps as text), signature, leaves, labels."""

    header: dict[str, Any]
    signature: str
    leaves: bytes = b""
    labels: bytes = b""

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical([self.header[field] for field in HEADER_FIELDS])).hexdigest()

    def signed_by(self, key: str | bytes) -> bool:
        """Whether the signature was made with ``key`` over exactly this header."""
        try:
            return ledger_signer(key).verify_signature(self.digest.encode(), self.signature.encode())
        except BadSignature:
            return False

    def leaves_intact(self) -> bool:
        """Whether the leaves are the ones the header's root was computed over."""
        return self.header["kind"] == "purge" or leaves_root(self.leaves) == self.header["root"]


def ledger_signer(key: str | bytes) -> Signer:
    """The one signer for checkpoints (its own salt)."""
    return Signer(key, salt="consent-ledger", digest_method=hashlib.sha256)


def export_signer(key: str | bytes) -> Signer:
    """The signer for the summaries that close exported files (its own salt)."""
    return Signer(key, salt="consent-export", digest_method=hashlib.sha256)


def summary_digest(summary: dict[str, Any]) -> str:
    """SHA-256 over an export summary (without its signature) as canonical JSON."""
    return hashlib.sha256(canonical({k: v for k, v in summary.items() if k != "signature"})).hexdigest()


def ledger_key() -> str:
    """``CONSENT_LEDGER_KEY``, or the receipts' ``CONSENT_SECRET_KEY`` when it is not set."""
    return str(current_app.config.get("LEDGER_KEY") or current_app.config["SECRET_KEY"])


def as_checkpoint(row: LedgerCheckpoint, leaves: bool = True) -> Checkpoint:
    """The stored row in its signed form (with or without its leaves and labels)."""
    header = {field: getattr(row, field) for field in HEADER_FIELDS}
    for field in ("first_at", "last_at", "signed_at"):
        header[field] = recording.iso(header[field]) if header[field] is not None else None
    if not leaves:
        return Checkpoint(header, row.signature)
    return Checkpoint(header, row.signature, bytes(row.leaves), bytes(row.labels))


def lock_site(site: str, wait: bool) -> bool:
    """Take the site's ledger lock for this transaction; False if it is busy and ``wait`` is False.

    PostgreSQL: an advisory lock per site. SQLite: waiting takes the database's
    write lock now (``BEGIN IMMEDIATE``); not waiting takes nothing, and the
    unique ``(site, seq)`` settles a race.
    """
    if db.engine.dialect.name != "postgresql":
        raw = db.session.connection().connection.driver_connection
        if wait and not raw.in_transaction:
            raw.execute("BEGIN IMMEDIATE")
        return True
    key = int.from_bytes(hashlib.sha256(f"consent-ledger:{site}".encode()).digest()[:8], "big", signed=True)
    if wait:
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        return True
    return bool(db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


def latest(site: str) -> LedgerCheckpoint | None:
    """The site's newest checkpoint."""
    return db.session.scalars(
        select(LedgerCheckpoint).where(LedgerCheckpoint.site == site).order_by(LedgerCheckpoint.seq.desc()).limit(1)
    ).first()


def leaf_span(leaves: bytes) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest recorded_at among ``leaves``."""
    moments = [leaf[1] for leaf in LEAF.iter_unpack(leaves)]
    if not moments:
        return None, None
    return from_epoch_ms(min(moments)), from_epoch_ms(max(moments))


def fill_and_sign(row: LedgerCheckpoint) -> None:
    """Set the span, root, signing time and signature of ``row`` from its leaves and header."""
    if row.kind != "purge":
        row.first_at, row.last_at = leaf_span(row.leaves)
        row.root = leaves_root(row.leaves)
        row.leaf_count = len(row.leaves) // LEAF.size
    now = utcnow()
    row.signed_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
    checkpoint = as_checkpoint(row)
    row.signature = ledger_signer(ledger_key()).get_signature(checkpoint.digest.encode()).decode()


def append(
    site: str, kind: str, previous: LedgerCheckpoint | None, after_id: int, last_id: int, **values: Any
) -> LedgerCheckpoint:
    """Add the checkpoint that follows ``previous`` to the session (the caller commits).

    Its seq is the one after ``previous``: if someone appended first, the
    unique ``(site, seq)`` refuses this one, so decisions made on a stale
    ``previous`` are never written.
    """
    row = LedgerCheckpoint(
        site=site,
        seq=previous.seq + 1 if previous else 1,
        kind=kind,
        after_id=after_id,
        last_id=last_id,
        previous=as_checkpoint(previous, leaves=False).digest if previous else GENESIS,
        leaves=values.pop("leaves", b""),
        labels=values.pop("labels", b""),
        detail=values.pop("detail", {}),
        root=values.pop("root", ""),
        leaf_count=values.pop("leaf_count", 0),
        **values,
    )
    fill_and_sign(row)
    db.session.add(row)
    db.session.flush()
    return row


GROWING_FIELDS = ("last_id", "leaf_count", "first_at", "last_at", "root", "signed_at", "leaves", "labels", "signature")


def grown(row: LedgerCheckpoint, last_id: int, leaves: bytes, labels: bytes) -> dict[str, Any]:
    """The new values of ``row`` with ``leaves`` appended up to ``last_id``, signed anew (``row`` untouched)."""
    copy = LedgerCheckpoint(**{field: getattr(row, field) for field in (*HEADER_FIELDS, "labels", "leaves")})
    copy.last_id, copy.leaves, copy.labels = last_id, bytes(row.leaves) + leaves, bytes(row.labels) + labels
    fill_and_sign(copy)
    return {field: getattr(copy, field) for field in GROWING_FIELDS}


def checkpoints(site: str, leaves: bool = True) -> list[Checkpoint]:
    """Every stored checkpoint of ``site``, oldest first (without leaves and labels: see ``with_leaves``)."""
    query = select(LedgerCheckpoint).where(LedgerCheckpoint.site == site).order_by(LedgerCheckpoint.seq)
    if not leaves:
        query = query.options(defer(LedgerCheckpoint.leaves), defer(LedgerCheckpoint.labels))
    result = []
    for row in db.session.scalars(query):
        result.append(as_checkpoint(row, leaves))
        db.session.expunge(row)
    return result


def with_leaves(checkpoint: Checkpoint) -> Checkpoint:
    """``checkpoint`` with its stored leaves and labels read in."""
    if checkpoint.leaves or not checkpoint.header["leaf_count"]:
        return checkpoint
    found = db.session.execute(
        select(LedgerCheckpoint.leaves, LedgerCheckpoint.labels).where(
            LedgerCheckpoint.site == checkpoint.header["site"], LedgerCheckpoint.seq == checkpoint.header["seq"]
        )
    ).first()
    if found is None:
        return checkpoint
    return Checkpoint(checkpoint.header, checkpoint.signature, bytes(found.leaves), bytes(found.labels))


def sealed_through(site: str) -> int:
    """The highest record id that ``site``'s ledger accounts for."""
    return int(db.session.scalar(select(func.max(LedgerCheckpoint.last_id)).where(LedgerCheckpoint.site == site)) or 0)
