"""Ed25519 statements: what the ledger signs, and how anyone checks it with the public keys alone.

A statement is a JSON object of strings, integers and booleans whose ``type``
names what it is (``consent/tree-head/v1``, ``consent/record/v1``,
``consent/erasure/v1``, ``consent/export/v1``). Its signed bytes are its
canonical JSON: keys sorted, no spaces, non-ASCII characters escaped as
``\\uXXXX``, which for such values is RFC 8785 (JCS). A signature is standard
base64 of the 64-byte Ed25519 signature; a key id is the first 16 hex digits of
SHA-256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from consent.timestamps import iso_or_none, parse_iso_or_none

TREE_HEAD = "consent/tree-head/v1"
RECORD = "consent/record/v1"
ERASURE = "consent/erasure/v1"
EXPORT = "consent/export/v1"


def canonical(statement: dict[str, Any]) -> bytes:
    """The bytes that are signed: the statement's JCS form."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A public key's id: the first 16 hex digits of SHA-256 over its 32 raw bytes."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    """One published key: its id, the key, and the period in which what it signed is accepted."""

    key_id: str
    key: Ed25519PublicKey
    not_before: datetime | None = None
    not_after: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        return (self.not_before is None or moment >= self.not_before) and (
            self.not_after is None or moment <= self.not_after
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(raw_public(self.key)).decode(),
            "not_before": iso_or_none(self.not_before),
            "not_after": iso_or_none(self.not_after),
        }


class KeySetError(ValueError):
    """A key set that cannot be read."""


def parse_keys(document: Any) -> dict[str, PublicKey]:
    """The keys of a published key set (``{"keys": [...]}`` or the list itself), by key id; KeySetError if malformed."""
    entries = document.get("keys") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise KeySetError('a key set is {"keys": [...]}')
    keys: dict[str, PublicKey] = {}
    for number, item in enumerate(entries, 1):
        try:
            raw = base64.b64decode(item["public_key"], validate=True)
            key = Ed25519PublicKey.from_public_bytes(raw)
            published = PublicKey(
                key_id(key), key, parse_iso_or_none(item.get("not_before")), parse_iso_or_none(item.get("not_after"))
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise KeySetError(f"key {number}: not an Ed25519 public key with an ISO validity ({error})") from None
        if item.get("key_id") not in (None, published.key_id):
            raise KeySetError(f"key {number}: its key_id {item.get('key_id')!r} is not the id of its public key")
        keys[published.key_id] = published
    return keys


@functools.lru_cache(maxsize=8)
def signing_key_id(private: Ed25519PrivateKey) -> str:
    """The id of a private key's public half, worked out once per key (every recorded choice is signed)."""
    return key_id(private.public_key())


def sign(private: Ed25519PrivateKey, statement: dict[str, Any]) -> dict[str, Any]:
    """``statement`` with the id of the signing key and the signature."""
    signature = private.sign(canonical(statement))
    return {**statement, "key_id": signing_key_id(private), "signature": base64.b64encode(signature).decode()}


def statement_of(signed: dict[str, Any]) -> dict[str, Any]:
    """What was signed: the signed object without its ``key_id`` and ``signature``."""
    return {name: value for name, value in signed.items() if name not in ("key_id", "signature")}


def check(signed: Any, keys: dict[str, PublicKey], kind: str, at: str = "timestamp") -> str | None:
    """Why ``signed`` is not a valid statement of ``kind`` under ``keys``; None if it is.

    The key must be one of ``keys`` and valid at the statement's own time (its ``at`` field).
    """
    if not isinstance(signed, dict) or signed.get("type") != kind:
        return f"not a {kind} statement"
    named = signed.get("key_id")
    key = keys.get(named) if isinstance(named, str) else None  # untrusted input: any JSON value
    if key is None:
        return f"signed by key {signed.get('key_id')!r}, which is not one of the trusted keys"
    try:
        signature = base64.b64decode(signed.get("signature", ""), validate=True)
        key.key.verify(signature, canonical(statement_of(signed)))
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return "its signature does not verify: forged or altered"
    try:
        moment = parse_iso_or_none(signed.get(at))
    except (TypeError, ValueError):
        moment = None
    if moment is None:
        return f"its {at} is not an ISO 8601 time"
    if not key.valid_at(moment):
        return f"signed at {signed.get(at)} by key {key.key_id}, outside that key's validity (a retired key?)"
    return None
