"""Verifying an exported file offline, against its detached proof, with the public keys alone.

No database, no configuration, no secret and no Flask: only the standard
library and ``cryptography``. The checks, in order (docs/verifying.md):

1. the keys: those the proof carries, each of which must be in the trusted
   key set given with ``--keys`` (a file or an http(s) URL) with the same
   public key; without ``--keys`` they are taken from the proof unchecked;
2. the signed tree head: signed by a trusted key, valid at its time, of the site;
3. the signed export statement: the same site, and the same head (tree size and root);
4. the seals' leaves, ``[first_index, end_index)`` of the tree, with the
   range proof: together they must give the head's root;
5. the signed erasures, which allow the records of the leaves they name to be absent;
6. every record of the file: its values hash to its record_hash, and the
   records in id order are exactly the leaves (consent.verify.checker.Verifier).

Exit status: 0 intact (keys checked), 1 not intact, 2 the command was used
wrongly or a file cannot be read, 3 intact but the keys were taken from the
proof unchecked (which proves only that the file and the proof agree).
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
import urllib.request
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consent.ledger import tree
from consent.ledger.leaves import LABEL_SIZE, LEAF, Seal, leaf_hashes, unpack_leaves
from consent.ledger.signing import EXPORT, KeySetError, PublicKey, check, parse_keys, raw_public
from consent.verify.checker import Report, Verifier
from consent.verify.file import ExportFile, ExportFileError
from consent.verify.proofs import TreeCheck, erasures, good_heads
from consent.verify.scan import CsvScan, quick_report

PROOF_TYPE = "consent/export-proof/v1"
FETCH_TIMEOUT = 10  # seconds, for a key set given as a URL
BUNDLE_RECORDS = ("records.csv", "records.jsonl")
BUNDLE_PROOF = "proof.json"
INTACT, NOT_INTACT, UNUSABLE, UNCHECKED_KEYS = 0, 1, 2, 3


class ProofError(Exception):
    """A proof, a key set or a bundle that cannot be read at all."""


@dataclass
class Proof:
    """An export's proof as read from its JSON (consent.export.proof), the seals' leaves decoded."""

    site: str
    head: dict[str, Any] | None
    export: dict[str, Any]
    range_proof: list[bytes]
    erasures: list[dict[str, Any]]
    keys: Any
    seals: list[Seal] = field(default_factory=list)


def load_proof(data: bytes, name: str = "proof") -> Proof:
    """The proof in ``data``; ProofError if it is not one."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("type") != PROOF_TYPE:
            raise ValueError(f"not a {PROOF_TYPE} document")
        site = document["site"]
        seals = [
            Seal(
                site,
                int(item["seq"]),
                int(item["first_index"]),
                int(item["leaf_count"]),
                int(item["after_id"]),
                int(item["last_id"]),
                base64.b64decode(item["leaves"], validate=True),
                base64.b64decode(item["labels"], validate=True),
            )  # fmt: skip
            for item in document["seals"]
        ]
        return Proof(
            site=str(site),
            head=document.get("head"),
            export=document["export"],
            range_proof=[bytes.fromhex(value) for value in document["range_proof"]],
            erasures=list(document.get("erasures") or []),
            keys=document.get("keys"),
            seals=seals,
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise ProofError(f"{name}: not an export proof ({error})") from None


def load_keys(source: str) -> dict[str, PublicKey]:
    """The trusted key set: a JSON file, or an http(s) URL (the service's ``/api/v1/ledger/keys``)."""
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 - http(s) only
                data = response.read()
        else:
            data = Path(source).read_bytes()
        return parse_keys(json.loads(data))
    except (OSError, ValueError, KeySetError) as error:
        raise ProofError(f"{source}: not a key set ({error})") from None


def choose_keys(
    proof: Proof, trusted: dict[str, PublicKey] | None, outcome: TreeCheck
) -> tuple[dict[str, PublicKey], str]:
    """The keys to check signatures with, and a note saying where they come from; findings for keys that fail."""
    try:
        carried = parse_keys(proof.keys)
    except KeySetError as error:
        outcome.problem(f"the proof's key set cannot be read: {error}")
        carried = {}
    if trusted is None:
        return carried, (
            "keys: taken from the proof UNCHECKED (no --keys): this shows only that the file and its proof agree; "
            "give --keys with the site's published key set to know who signed them"
        )
    for key_id, key in carried.items():
        known = trusted.get(key_id)
        if known is None:
            outcome.problem(f"the proof carries key {key_id}, which is not in the trusted key set")
        elif raw_public(known.key) != raw_public(key.key):
            outcome.problem(f"the proof's key {key_id} is not the trusted key of that id")
    # Signatures are checked with the trusted keys and their validity (a key may have been retired since).
    return trusted, f"keys: checked against the trusted key set ({len(trusted)} keys)"


def check_proof(proof: Proof, keys: dict[str, PublicKey], outcome: TreeCheck) -> bool:
    """Whether the proof's head, export statement and leaves hold together; a finding for each thing that does not."""
    head = proof.head
    heads = good_heads(outcome, [head] if head is not None else [], keys, "head")
    if head is None:
        outcome.problem("the proof has no signed tree head: nothing vouches for the records")
    statement = proof.export
    why = check(statement, keys, EXPORT, at="exported_at")
    if why is None and statement.get("site") != proof.site:
        why = f"it is an export of site {statement.get('site')!r}"
    if why is None and head is not None:
        if (statement.get("tree_size"), statement.get("root_hash")) != (head.get("tree_size"), head.get("root_hash")):
            why = "it names another head than the proof's"
    if why is not None:
        outcome.problem(f"the export statement: {why}")
    if head is None or not heads or why is not None:
        return False
    start, end, size = statement.get("first_index"), statement.get("end_index"), statement.get("tree_size")
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(size, int) and 0 <= start <= end <= size):
        outcome.problem(f"the export statement names no leaf range of the tree ({start!r}..{end!r} of {size!r})")
        return False
    if not _seals_cover(proof.seals, start, end, outcome):
        return False
    hashes = [value for seal in proof.seals for value in leaf_hashes(seal.leaves)]
    computed = tree.range_root(start, size, hashes, proof.range_proof)
    if computed is None or computed.hex() != head["root_hash"]:
        outcome.problem(
            f"the leaves {start}..{end - 1} with the range proof do not give the head's root: "
            "the leaves or the proof were altered"
        )
        return False
    return True


def _seals_cover(seals: list[Seal], start: int, end: int, outcome: TreeCheck) -> bool:
    """Whether the seals hold exactly the leaves ``[start, end)``, one after the other, ids rising."""
    at, ok, previous = start, True, None
    for seal in seals:
        if seal.first_index != at:
            outcome.problem(f"seal {seal.seq} starts at leaf {seal.first_index}, where leaf {at} was due")
            ok = False
        if len(seal.leaves) != seal.leaf_count * LEAF.size or len(seal.labels) != seal.leaf_count * LABEL_SIZE:
            outcome.problem(f"seal {seal.seq}: its leaves or labels are not {seal.leaf_count} long")
            return False
        if previous is not None and seal.after_id != previous.last_id:
            outcome.problem(
                f"seal {seal.seq} follows record {seal.after_id}, the seal before ends at {previous.last_id}"
            )
            ok = False
        ids = [leaf[0] for leaf in unpack_leaves(seal.leaves)]
        if any(low >= high for low, high in zip([seal.after_id, *ids], [*ids, seal.last_id + 1], strict=True)):
            outcome.problem(
                f"seal {seal.seq}: its records' ids are not rising within ({seal.after_id}, {seal.last_id}]"
            )
            ok = False
        at, previous = seal.end_index, seal
    if at != end:
        outcome.problem(f"the seals end at leaf {at}, the export at {end}")
        ok = False
    return ok


def verify_records(path: Path, proof: Proof, keys: dict[str, PublicKey], note: str) -> Report:
    """Check the records of one exported file against ``proof``; the report names every problem."""
    outcome = TreeCheck(proof.site)
    exported = ExportFile(path)
    scan = CsvScan(path) if exported.format == "csv" else None  # its workers start while the proof is checked
    try:
        proven = check_proof(proof, keys, outcome)
        erased = erasures(outcome, proof.erasures, keys)
        seals = [(seal, proven) for seal in proof.seals]
        report = None
        if scan is not None and proven:
            report = quick_report(Verifier(proof.site, seals, erased, tail_allowed=False), scan.pairs())
        if report is None:
            report = Verifier(proof.site, seals, erased, tail_allowed=False).run(exported.rows())
            report.findings[:0] = exported.problems
    finally:
        if scan is not None:
            scan.close()
    report.findings[:0] = outcome.findings
    report.head = proof.head if proven else None
    report.notes += [f"file: {path.name} ({exported.format})", note]
    return report


def verify(file: Path, proof_path: Path | None, keys_source: str | None) -> tuple[list[Report], bool]:
    """Verify ``file`` (an export or a bundle) against its proof; the reports and whether the keys were checked."""
    trusted = load_keys(keys_source) if keys_source else None
    with ExitStack() as stack:
        files, proof_data, proof_name = [file], None, str(proof_path)
        if zipfile.is_zipfile(file):
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="consent-verify-")))
            files, proof_data = _unpack_bundle(file, folder)
            proof_name = f"{file.name}: {BUNDLE_PROOF}"
        if proof_path is not None:
            proof_data, proof_name = _read(proof_path), str(proof_path)
        if proof_data is None:
            raise ProofError(f"{file}: give the export's proof with --proof (or verify a bundle)")
        proof = load_proof(proof_data, proof_name)
        reports = []
        for path in files:
            outcome = TreeCheck(proof.site)
            keys, note = choose_keys(proof, trusted, outcome)
            report = verify_records(path, proof, keys, note)
            report.findings[:0] = outcome.findings
            reports.append(report)
        return reports, trusted is not None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ProofError(f"{path}: cannot be read ({error})") from None


def _unpack_bundle(file: Path, folder: Path) -> tuple[list[Path], bytes]:
    """The record files and the proof of a bundle, the record files written into ``folder``."""
    try:
        with zipfile.ZipFile(file) as bundle:
            names = set(bundle.namelist())
            if BUNDLE_PROOF not in names or not names.intersection(BUNDLE_RECORDS):
                raise ProofError(f"{file}: not a bundle (it needs {BUNDLE_PROOF} and {' or '.join(BUNDLE_RECORDS)})")
            files = []
            for name in BUNDLE_RECORDS:
                if name in names:
                    target = folder / name
                    with bundle.open(name) as source, target.open("wb") as out:
                        while chunk := source.read(1 << 20):
                            out.write(chunk)
                    files.append(target)
            return files, bundle.read(BUNDLE_PROOF)
    except (zipfile.BadZipFile, OSError) as error:
        raise ProofError(f"{file}: not a readable bundle ({error})") from None


def exit_status(reports: list[Report], keys_checked: bool) -> int:
    """0 intact with checked keys, 1 not intact, 3 intact with the keys taken from the proof."""
    if not all(report.intact for report in reports):
        return NOT_INTACT
    return INTACT if keys_checked else UNCHECKED_KEYS


def run(file: Path, proof_path: Path | None, keys_source: str | None) -> int:
    """Verify and print the reports; the exit status (ExportFileError and ProofError: printed, 2)."""
    from consent.verify.report import print_report

    try:
        reports, checked = verify(file, proof_path, keys_source)
    except (ProofError, ExportFileError) as error:
        print(f"error: {error}")
        return UNUSABLE
    for report in reports:
        print_report(report)
    status = exit_status(reports, checked)
    if status == UNCHECKED_KEYS:
        print("verdict: consistent, but NOT authenticated: the keys were taken from the proof (give --keys)")
    return status
