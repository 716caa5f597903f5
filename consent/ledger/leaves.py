"""Leaves as seals store them, and the seals themselves as verification reads them.

A seal's *leaf* is 56 bytes, one per record, in id order::

    id (8) | recorded_at in ms since 1970 (8) | SHA-256(consent_id)[:8] | leaf hash (32)

Only the leaf hash is covered by the signed tree heads; the id says which
record the leaf is, the time and the consent fingerprint let verification say
why a record may be missing and whose it was. Beside the leaves, the *labels*
hold each leaf's consent ID as 16 bytes (zero once erased), for naming.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consent.timestamps import epoch_ms, from_epoch_ms

LEAF = struct.Struct(">Qq8s32s")
HASH_AT = 24  # where a leaf's hash starts
LABEL_SIZE = 16
NO_LABEL = bytes(LABEL_SIZE)
NO_SUBJECT = bytes(8)


def subject(consent_id: str) -> bytes:
    """The 8-byte fingerprint of a consent ID that a leaf carries."""
    return hashlib.sha256(consent_id.encode()).digest()[:8]


def label(consent_id: str) -> bytes:
    """A consent ID as 16 bytes for the labels beside the leaves."""
    try:
        return uuid.UUID(consent_id).bytes
    except ValueError:
        return NO_LABEL


def label_text(raw: bytes, fingerprint: bytes) -> str | None:
    """The consent ID a label holds, if it is there and matches the leaf's fingerprint."""
    if raw == NO_LABEL or len(raw) != LABEL_SIZE:
        return None
    consent_id = str(uuid.UUID(bytes=raw))
    return consent_id if subject(consent_id) == fingerprint else None


def pack_leaf(record_id: int, recorded_at: datetime, consent_id: str, digest: bytes) -> bytes:
    """The leaf of one record: its id, time, consent fingerprint and the 32 bytes of its record_hash."""
    return LEAF.pack(record_id, epoch_ms(recorded_at), subject(consent_id), digest)


def unpack_leaves(leaves: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """``(id, recorded_at ms, consent fingerprint, leaf hash)`` for each leaf."""
    return list(LEAF.iter_unpack(leaves))


def leaf_hashes(leaves: bytes) -> list[bytes]:
    """The 32-byte leaf hash of each leaf, in order."""
    size = LEAF.size
    return [leaves[start + HASH_AT : start + size] for start in range(0, len(leaves), size)]


def leaf_pairs(leaves: bytes) -> bytes:
    """The id and the first 16 bytes of the hash of each leaf, 24 bytes a leaf, side by side."""
    words = memoryview(leaves).cast("Q")  # seven 8-byte words a leaf, copied as they are
    pairs = bytearray(len(leaves) // LEAF.size * 24)
    out = memoryview(pairs).cast("Q")
    out[0::3], out[1::3], out[2::3] = words[0::7], words[3::7], words[4::7]
    return bytes(pairs)


def pair_ids(pairs: bytes) -> tuple[int, ...]:
    """The record ids in id-and-digest pairs (see ``leaf_pairs``)."""
    ids = memoryview(pairs).cast("Q")[0::3].tobytes()
    return struct.unpack(f">{len(ids) // 8}Q", ids)


def leaf_span(leaves: bytes) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest recorded_at among ``leaves``."""
    moments = [leaf[1] for leaf in LEAF.iter_unpack(leaves)]
    if not moments:
        return None, None
    return from_epoch_ms(min(moments)), from_epoch_ms(max(moments))


@dataclass
class Seal:
    """A seal as stored or carried by a proof: which leaves of the tree it holds, and their records' ids.

    ``first_index``: the tree position of its first leaf; the seal claims the
    site's records with ``after_id < id <= last_id`` are exactly its leaves.
    """

    site: str
    seq: int
    first_index: int
    leaf_count: int
    after_id: int
    last_id: int
    leaves: bytes = b""
    labels: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def end_index(self) -> int:
        return self.first_index + self.leaf_count

    def header(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "first_index": self.first_index,
            "leaf_count": self.leaf_count,
            "after_id": self.after_id,
            "last_id": self.last_id,
        }
