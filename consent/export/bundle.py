"""The audit bundle: one zip with the records as CSV and as JSON Lines, their proof, the inventories and a README.

The zip is written as it is read (entries with data descriptors, Zip64), so
that a bundle of any size streams in constant memory.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.store.models import InventoryVersion

README = """\
Compliance export of site {site}: an audit bundle
==================================================

records.csv     the consent records, one row per record (UTF-8, a header row)
records.jsonl   the same records, one JSON object per line
proof.json      the detached proof of those records: the signed tree head of
                the site's log ({tree_size} leaves), the Merkle range proof of
                leaves [{first_index}, {end_index}), the signed export statement,
                the erasures that name leaves in the range, the inventory
                versions by hash, and the public keys
inventories/    the contents of each inventory version (what visitors were
                shown), one file per hash: inventories/<hash>.json

How to verify, offline, with nothing but the site's published public keys:

1. Fetch the keys from the operator's site, from a source you trust
   (not from this bundle):

       curl -o keys.json https://<the consent service>/api/v1/ledger/keys

2. Run the verifier (Python 3.11+, with only the "cryptography" package):

       python -m consent.verify bundle.zip --keys keys.json

   It checks the signatures of the head and of the export statement against
   those keys, recomputes the head's root from the records' hashes and the
   range proof, and names by record id and consent ID every record that was
   changed, removed, inserted or reordered.

3. To check that the log was not rewritten since, compare the head in
   proof.json with heads seen elsewhere (a witness's store, a visitor's
   receipt): GET /api/v1/sites/{site}/ledger/consistency?from=&to= proves
   that a later head extends this one.
"""


class _Pipe:
    """A write-only file whose bytes are taken out in pieces: what zipfile writes, streamed."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.pieces)
        self.pieces.clear()
        return data


def inventories(session: Session, site: str) -> Iterator[tuple[str, bytes]]:
    """(file name, JSON) of every inventory version the site has shown."""
    versions = session.execute(
        select(InventoryVersion.hash, InventoryVersion.content)
        .where(InventoryVersion.site == site)
        .order_by(InventoryVersion.first_served_at)
    )
    for digest, content in versions:
        yield f"inventories/{digest}.json", json.dumps(content, indent=1, ensure_ascii=False).encode() + b"\n"


def zip_stream(entries: Iterable[tuple[str, Callable[[], Iterable[bytes]]]]) -> Iterator[bytes]:
    """A zip of ``entries`` (name, and a function giving its content in chunks), as chunks of bytes."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:  # type: ignore[call-overload]  # a write-only stream
        for name, content in entries:
            with archive.open(name, "w", force_zip64=True) as member:
                for chunk in content():
                    member.write(chunk)
                    if len(pipe.pieces) > 16:
                        yield pipe.take()
            yield pipe.take()
    yield pipe.take()
