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


def iso_ms(text: str) -> int:
    """Milliseconds since 1970 of an ISO 8601 time (UTC when it names no zone)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return epoch_ms(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


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


def leaf_pairs(leaves: bytes) -> bytes:
    """The id and digest of each leaf, 24 bytes a leaf (bytes 0-8 and 24-40), side by side."""
    words = memoryview(leaves).cast("Q")  # five 8-byte words a leaf, copied as they are
    pairs = bytearray(len(leaves) // LEAF.size * 24)
    out = memoryview(pairs).cast("Q")
    out[0::3], out[1::3], out[2::3] = words[0::5], words[3::5], words[4::5]
    return bytes(pairs)


def pair_ids(pairs: bytes) -> tuple[int, ...]:
    """The record ids in id-and-digest pairs (see ``leaf_pairs``)."""
    ids = memoryview(pairs).cast("Q")[0::3].tobytes()
    return struct.unpack(f">{len(ids) // 8}Q", ids)


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


def leaf_span(leaves: bytes) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest recorded_at among ``leaves``."""
    moments = [leaf[1] for leaf in LEAF.iter_unpack(leaves)]
    if not moments:
        return None, None
    return from_epoch_ms(min(moments)), from_epoch_ms(max(moments))
