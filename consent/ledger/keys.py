"""The ledger's Ed25519 keys: the private key from configuration, the public keys for everyone.

``CONSENT_LEDGER_KEY_FILE`` names a PEM file (PKCS #8) holding the private key
that signs tree heads, proofs and erasures; ``consent keys generate`` makes
one. The demo makes its own, ``instance/ledger-key.pem``, on first start.
``CONSENT_LEDGER_RETIRED_KEYS`` names a JSON key set of the public keys used
before, each with the period in which it signed (``consent keys retire``
appends the current key to it before a rotation). ``GET /api/v1/ledger/keys``
and ``consent keys show`` publish them all.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from consent.config import ConfigurationError
from consent.ledger.signing import KeySetError, PublicKey, key_id, parse_keys
from consent.timestamps import iso, utcnow

DEMO_KEY = "ledger-key.pem"
PRIVATE = "consent.ledger_key"
PUBLIC = "consent.ledger_public_keys"

bp = Blueprint("ledger_keys", __name__, url_prefix="/api/v1")


class LedgerKeyError(ConfigurationError):
    """The ledger key cannot be read, or is missing outside the demo."""


def generate_pem(passphrase: bytes | None = None) -> bytes:
    """A new Ed25519 private key as PEM (PKCS #8)."""
    encryption = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    return Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)


def write_private(path: Path, pem: bytes) -> None:
    """Write a private key readable by its owner only; never overwrite one."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)


def _demo_key(app: Flask) -> Path:
    """The demo's own key under instance/, made on first start (by whichever process gets there first)."""
    path = Path(app.instance_path) / DEMO_KEY
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_private(path, generate_pem())
        except FileExistsError:
            pass
    return path


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise LedgerKeyError(f"{path}: CONSENT_LEDGER_KEY_FILE names no file") from None
    except (ValueError, TypeError) as error:
        raise LedgerKeyError(f"{path}: not an unencrypted PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerKeyError(f"{path}: the ledger key must be Ed25519 (make one with `consent keys generate`)")
    return key


def _load_retired(path: Path) -> dict[str, PublicKey]:
    try:
        return parse_keys(json.loads(path.read_text()))
    except FileNotFoundError:
        raise LedgerKeyError(f"{path}: CONSENT_LEDGER_RETIRED_KEYS names no file") from None
    except (ValueError, KeySetError) as error:
        raise LedgerKeyError(f"{path}: not a key set ({error})") from None


def init_app(app: Flask) -> None:
    """Load the private key and the published key set once, at start-up; refuse to start without them."""
    if app.config.get("LEDGER_KEY"):
        raise LedgerKeyError(
            "CONSENT_LEDGER_KEY (an HMAC key) is retired: the ledger now signs with Ed25519. "
            "Make a key with `consent keys generate -o ledger-key.pem`, set CONSENT_LEDGER_KEY_FILE and "
            "unset CONSENT_LEDGER_KEY (docs/proof.md: upgrading an existing log)"
        )
    configured = app.config.get("LEDGER_KEY_FILE")
    if configured:
        path = Path(configured)
    elif app.config.get("DEMO") or app.testing:
        path = _demo_key(app)
    else:
        raise LedgerKeyError(
            "refusing to start outside the demo without the ledger's signing key: "
            "make one with `consent keys generate -o FILE` and set CONSENT_LEDGER_KEY_FILE"
        )
    private = _load_private(path)
    retired = _load_retired(Path(app.config["LEDGER_RETIRED_KEYS"])) if app.config.get("LEDGER_RETIRED_KEYS") else {}
    current = private.public_key()
    ends = [key.not_after for key in retired.values() if key.not_after is not None]
    keys = dict(retired)
    keys[key_id(current)] = PublicKey(key_id(current), current, max(ends) if ends else None, None)
    app.extensions[PRIVATE] = private
    app.extensions[PUBLIC] = keys


def private_key() -> Ed25519PrivateKey:
    """The key that signs now."""
    return current_app.extensions[PRIVATE]


def public_keys() -> dict[str, PublicKey]:
    """Every published key by id: the current one and the retired ones, each with its validity."""
    return current_app.extensions[PUBLIC]


def key_set() -> dict[str, object]:
    """The published key set as JSON, current key first."""
    current = key_id(private_key().public_key())
    ordered = sorted(public_keys().values(), key=lambda key: key.key_id != current)
    return {"keys": [{**key.as_json(), "status": "current" if key.key_id == current else "retired"} for key in ordered]}


@bp.get("/ledger/keys")
def keys_view() -> ResponseReturnValue:
    """The Ed25519 public keys that sign tree heads, proofs and erasures, with key ids and validity."""
    response = jsonify(key_set())
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@click.group("keys")
def keys_group() -> None:
    """The ledger's Ed25519 keys."""


@keys_group.command("generate")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="New PEM file.")
def generate_command(output: Path) -> None:
    """Make a new private key (PEM, readable by its owner only); the public key goes to stdout."""
    pem = generate_pem()
    try:
        write_private(output, pem)
    except FileExistsError:
        raise click.ClickException(f"{output} exists: a ledger key is never overwritten") from None
    key = load_pem_private_key(pem, password=None)
    click.echo(f"{output}: new Ed25519 key {key_id(key.public_key())}")  # type: ignore[arg-type]


@keys_group.command("show")
def show_command() -> None:
    """Print the published key set (JSON): what auditors pass to `consent verify --keys`."""
    click.echo(json.dumps(key_set(), indent=2))


@keys_group.command("retire")
@click.option("--into", "into", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Key set file.")
@click.option("--minutes", default=10, show_default=True, help="How long the current key may still sign.")
def retire_command(into: Path, minutes: int) -> None:
    """Add the current public key to a retired-keys file, valid until MINUTES from now (then rotate)."""
    document = json.loads(into.read_text()) if into.exists() else {"keys": []}
    current = public_keys()[key_id(private_key().public_key())]
    entry = {**current.as_json(), "not_after": None}
    entry["not_after"] = iso(utcnow() + timedelta(minutes=minutes))
    document["keys"] = [key for key in document["keys"] if key.get("key_id") != current.key_id] + [entry]
    into.write_text(json.dumps(document, indent=2) + "\n")
    click.echo(
        f"{into}: key {current.key_id} retired from {entry['not_after']}; "
        "now set CONSENT_LEDGER_KEY_FILE to the new key"
    )


def init_routes(app: Flask) -> None:
    app.register_blueprint(bp)
    app.cli.add_command(keys_group)
