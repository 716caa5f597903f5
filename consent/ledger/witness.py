"""``consent witness``: keep a site's signed tree heads outside its database, and catch any rewrite of its log.

Run from cron on another machine, it fetches the site's newest head and the
service's public keys, checks the head's signature, and checks that the log
it stands for extends the newest head stored before (a consistency proof,
fetched from the same service and checked here), then appends it to the store.

The store is JSON Lines. A ``{"kind": "keys", "keys": [...]}`` line pins the
public keys seen so far (a key id never changes its key); each
``{"kind": "head", "head": {...}, "from": M, "proof": [...]}`` line holds a
signed head with the consistency proof from the head stored before it, of
``M`` leaves. Every run re-checks the whole chain offline, signatures and
proofs, so every stored head stays vouched for; as "is a prefix of" is
transitive, the new head consistent with the newest stored one is consistent
with all of them. ``consent verify --witness STORE`` reads the same file.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from flask import Flask

from consent.ledger import tree
from consent.ledger.signing import TREE_HEAD, KeySetError, PublicKey, check, parse_keys

TIMEOUT = 10.0  # seconds for each request to the service
HEAD_PATH = "/ledger/head"


class WitnessError(click.ClickException):
    """Something the witness refuses: printed as one line, exit 1."""


def fetch_json(url: str) -> Any:
    """GET ``url`` as JSON; WitnessError naming the URL and why if the service cannot be read."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "consent-witness"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - http(s) checked by caller
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise WitnessError(f"{url}: the service answered {error.code} {_reason(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise WitnessError(f"{url}: the service is unreachable ({reason})") from None
    except ValueError as error:
        raise WitnessError(f"{url}: the answer is not JSON ({error})") from None


def _reason(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(error.reason)


def service_base(url: str) -> tuple[str, str]:
    """``…/api/v1`` and the site of a head URL ``…/api/v1/sites/<site>/ledger/head``; WitnessError for anything else."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    base, marker, rest = path.rpartition("/sites/")
    if parts.scheme not in ("http", "https") or not marker or not rest.endswith(HEAD_PATH):
        raise WitnessError(f"{url}: not a head URL (http(s)://…/api/v1/sites/<site>/ledger/head)")
    return urlunsplit((parts.scheme, parts.netloc, base, "", "")), rest.removesuffix(HEAD_PATH)


def load_keys(source: str | None, base: str) -> list[dict[str, Any]]:
    """The published key set's entries: from ``source`` (a file or URL) or the service's ``/ledger/keys``."""
    if source is None or source.startswith(("http://", "https://")):
        document = fetch_json(source or f"{base}/ledger/keys")
    else:
        try:
            document = json.loads(Path(source).read_text())
        except (OSError, ValueError) as error:
            raise WitnessError(f"{source}: not a key set ({error})") from None
    try:
        parse_keys(document)
    except KeySetError as error:
        raise WitnessError(f"{source or base + '/ledger/keys'}: not a key set ({error})") from None
    return list(document["keys"] if isinstance(document, dict) else document)


class Store:
    """A witness store as read: the pinned key entries by id, and the stored heads in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: dict[str, dict[str, Any]] = {}
        self.lines: list[dict[str, Any]] = []
        if not path.exists():
            return
        try:
            text = path.read_text()
            documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (OSError, ValueError) as error:
            raise WitnessError(f"{path}: not a witness store ({error})") from None
        for number, document in enumerate(documents, 1):
            kind = document.get("kind") if isinstance(document, dict) else None
            if kind == "keys":
                self.pin(document.get("keys"), f"{path} line {number}")
            elif kind == "head" and isinstance(document.get("head"), dict):
                self.lines.append(document)
            else:
                raise WitnessError(f"{path} line {number}: neither pinned keys nor a head")

    def pin(self, entries: Any, where: str) -> bool:
        """Pin ``entries`` (published key entries); whether anything changed. WitnessError if a key id changed key."""
        if not isinstance(entries, list):
            raise WitnessError(f"{where}: not a key set (a list of keys)")
        changed = False
        for entry in entries:
            try:
                (key_id,) = parse_keys([entry])
            except KeySetError as error:
                raise WitnessError(f"{where}: not a key set ({error})") from None
            pinned = self.keys.get(key_id)
            if pinned is not None and pinned["public_key"] != entry["public_key"]:
                raise WitnessError(f"{where}: key {key_id} is not the key pinned before: the keys were replaced")
            changed = changed or pinned != entry
            self.keys[key_id] = entry
        return changed

    def trusted(self) -> dict[str, PublicKey]:
        return parse_keys(list(self.keys.values()))

    def newest(self) -> dict[str, Any] | None:
        return self.lines[-1]["head"] if self.lines else None

    def check_chain(self) -> None:
        """Re-check every stored head offline: signed by a pinned key, each consistent with the one before."""
        keys = self.trusted()
        before: dict[str, Any] | None = None
        for line in self.lines:
            head = line["head"]
            why = check(head, keys, TREE_HEAD)
            if why is not None:
                raise WitnessError(f"{self.path}: the stored head of size {head.get('tree_size')!r}: {why}")
            if before is not None:
                if head.get("site") != before["site"]:
                    raise WitnessError(f"{self.path}: holds heads of sites {before['site']!r} and {head.get('site')!r}")
                if line.get("from") != before["tree_size"] or not consistent(before, head, line.get("proof")):
                    raise WitnessError(
                        f"{self.path}: the stored head of size {head['tree_size']} is not proven to extend "
                        f"the one of size {before['tree_size']} before it: the store was altered"
                    )
            before = head

    def append(self, *documents: dict[str, Any]) -> None:
        with self.path.open("a") as out:
            for document in documents:
                out.write(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")


def consistent(old: dict[str, Any], new: dict[str, Any], proof: Any) -> bool:
    """Whether ``proof`` (hex strings) shows the tree of head ``old`` is a prefix of the tree of head ``new``."""
    try:
        hashes = [bytes.fromhex(value) for value in proof]
        return tree.verify_consistency(
            old["tree_size"], new["tree_size"], bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"]), hashes
        )
    except (TypeError, ValueError, KeyError):
        return False


def witness(url: str, store_path: Path, keys_source: str | None) -> str:
    """Check the head at ``url`` against the store and append it; the line to print. WitnessError otherwise."""
    base, site = service_base(url)
    store = Store(store_path)
    store.check_chain()
    head = fetch_json(url)
    new_keys = store.pin(load_keys(keys_source, base), keys_source or f"{base}/ledger/keys")
    why = check(head, store.trusted(), TREE_HEAD)
    if why is not None:
        raise WitnessError(f"{url}: the head is not validly signed: {why}")
    if not isinstance(head.get("tree_size"), int) or not isinstance(head.get("root_hash"), str):
        raise WitnessError(f"{url}: the head has no tree_size and root_hash")
    if head.get("site") != site:
        raise WitnessError(f"{url}: the service answered with a head of site {head.get('site')!r}")
    before = store.newest()
    documents: list[dict[str, Any]] = [{"kind": "keys", "keys": list(store.keys.values())}] if new_keys else []
    size = head["tree_size"]
    if before is None:
        store.append(*documents, {"kind": "head", "head": head, "from": None, "proof": []})
        return f"{head['site']}: first head stored, {size} leaves, root {head['root_hash']}"
    if head.get("site") != before["site"]:
        raise WitnessError(f"{url}: a head of site {head.get('site')!r}, but the store holds {before['site']!r}")
    if size < before["tree_size"]:
        raise WitnessError(
            f"{head['site']}: ROLLBACK: the service's head has {size} leaves, but a head of "
            f"{before['tree_size']} leaves signed {before['timestamp']} was witnessed before"
        )
    if size == before["tree_size"]:
        if head["root_hash"] != before["root_hash"]:
            raise WitnessError(
                f"{head['site']}: INCONSISTENT: two signed heads of {size} leaves with different roots: "
                "the log was rewritten"
            )
        store.append(*documents)
        return f"{head['site']}: consistent, unchanged at {size} leaves"
    answer = fetch_json(f"{base}/sites/{head['site']}/ledger/consistency?from={before['tree_size']}&to={size}")
    proof = answer.get("proof") if isinstance(answer, dict) else None
    if not consistent(before, head, proof):
        raise WitnessError(
            f"{head['site']}: INCONSISTENT: the head of {size} leaves does not extend the head of "
            f"{before['tree_size']} leaves signed {before['timestamp']}: the log was rewritten"
        )
    store.append(*documents, {"kind": "head", "head": head, "from": before["tree_size"], "proof": proof})
    return f"{head['site']}: consistent, {before['tree_size']} -> {size} leaves, root {head['root_hash']}"


@click.command("witness")
@click.argument("url")
@click.option("--store", "store", type=click.Path(dir_okay=False, path_type=Path), required=True, help="JSONL file.")
@click.option("--keys", "keys", default=None, help="The public key set: a file or URL (default: the service's).")
def witness_command(url: str, store: Path, keys: str | None) -> None:
    """Fetch a site's signed head, check it extends every head stored before, and append it; exit 1 if not."""
    click.echo(witness(url, store, keys))


def init_app(app: Flask) -> None:
    """Register ``consent witness``."""
    app.cli.add_command(witness_command)
