"""Checking records against the ledger: every changed, removed, inserted or reordered record, by name.

The records come in id order (from the database, or as written in a file) and
are matched against the seals' leaves one checkpoint at a time, so memory
stays at one checkpoint's worth. They come one by one (``Row``) or a seal's
worth at a time (``Block``): a block whose id-and-digest pairs are byte for
byte the ones its seal holds is settled with one comparison; any other block
is looked at record by record, exactly as if its rows had come one by one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from consent.ledger import GENESIS, Checkpoint, iso_ms, label_text, leaf_pairs, pair_ids, unpack_leaves


class Row(NamedTuple):
    """What verification needs of one record; ``content_ok``: its fields hash to its record_hash."""

    id: int
    consent_id: str
    record_hash: str
    content_ok: bool


class Block(NamedTuple):
    """The records a reader found with ids in ``[first, last]``, in bulk.

    ``pairs``: per record, in order, its id (8 bytes, big-endian) and the first
    16 bytes of its record_hash, as in a leaf; ``content_ok``: every record's
    fields hash to its record_hash; ``rows``: the same records one by one.
    """

    first: int
    last: int
    count: int
    content_ok: bool
    pairs: bytes
    rows: Callable[[], Iterable[Row]]


@dataclass(frozen=True)
class Finding:
    kind: str  # changed | removed | inserted | reordered | checkpoint
    record_id: int | None
    consent_id: str | None
    message: str


@dataclass
class Report:
    site: str
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0
    sealed: int = 0
    unsealed: int = 0
    erased: int = 0
    purged: int = 0
    outside: int = 0
    unproven: int = 0
    head: Checkpoint | None = None

    @property
    def intact(self) -> bool:
        return not self.findings


@dataclass
class _Batch:
    """The records met so far within one seal."""

    seal: Checkpoint
    trusted: bool = True
    ids: list[int] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    consent_ids: list[str] = field(default_factory=list)


class Verifier:
    """Checks one site's chain of checkpoints, then streams its records against the seals.

    ``partial`` (an exported file): checkpoints may skip seqs, and sealed
    records outside ``scope`` (ms since 1970, from-until) may be absent.
    ``extra_seals`` are signed by someone else (an export's unsealed tail).
    ``load`` fetches a checkpoint's leaves and labels when they were left out of ``chain``.
    """

    def __init__(
        self,
        site: str,
        key: str | bytes,
        chain: list[Checkpoint],
        *,
        partial: bool = False,
        scope: tuple[int | None, int | None] = (None, None),
        extra_seals: Iterable[Checkpoint] = (),
        tail_allowed: bool = True,
        load: Callable[[Checkpoint], Checkpoint] = lambda checkpoint: checkpoint,
    ) -> None:
        self.report = Report(site)
        self.scope, self.tail_allowed, self.load = scope, tail_allowed, load
        self.seals: list[tuple[Checkpoint, bool]] = []
        self.erased: set[tuple[int, bytes]] = set()
        self.purge_cutoff: int | None = None
        self.start: dict[str, object] | None = None
        self.removed: dict[int, tuple[Finding, str]] = {}
        self._check_chain(sorted(chain, key=lambda c: c.header["seq"]), key, partial)
        self.seals.extend((seal, True) for seal in extra_seals)
        self.seal_ends = [seal.header["last_id"] for seal, _ in self.seals]
        self.erased_ids = sorted(row_id for row_id, _ in self.erased)

    def _problem(self, checkpoint: Checkpoint, message: str) -> None:
        self.report.findings.append(
            Finding("checkpoint", None, None, f"checkpoint {checkpoint.header['seq']}: {message}")
        )

    def _check_chain(self, chain: list[Checkpoint], key: str | bytes, partial: bool) -> None:
        previous: Checkpoint | None = None
        for checkpoint in chain:
            header = checkpoint.header
            if header["site"] != self.report.site:
                self._problem(checkpoint, f"belongs to site {header['site']!r}")
                continue
            if previous is not None and header["seq"] == previous.header["seq"] + 1:
                if header["previous"] != previous.digest or header["after_id"] != previous.header["last_id"]:
                    self._problem(checkpoint, "does not follow the one before it (chain broken)")
            elif previous is not None and not partial:
                self._problem(checkpoint, f"checkpoints {previous.header['seq'] + 1}..{header['seq'] - 1} are missing")
            previous = checkpoint
            trusted = checkpoint.signed_by(key)
            if not trusted:
                self._problem(checkpoint, "its signature does not verify: forged or altered without the key")
            if header["kind"] == "seal":
                self.seals.append((checkpoint, trusted))  # leaves are checked when its records are
            elif trusted:
                self._trust(self.load(checkpoint))
        self.report.head = previous
        if not partial and chain:
            self._check_start(chain[0])

    def _trust(self, checkpoint: Checkpoint) -> None:
        """Take in a signed erasure (its leaves may be absent) or purge (older records may be absent)."""
        if not checkpoint.leaves_intact():
            self._problem(checkpoint, "its leaves do not match its signed root")
        elif checkpoint.header["kind"] == "forget":
            self.erased.update((leaf[0], leaf[3]) for leaf in unpack_leaves(checkpoint.leaves))
        elif checkpoint.header["kind"] == "purge":
            self.purge_cutoff = max(self.purge_cutoff or 0, int(checkpoint.header["detail"]["absent_before_ms"]))
            self.start = checkpoint.header["detail"]["start"]

    def _check_start(self, first: Checkpoint) -> None:
        """The oldest checkpoint is the first ever, or the one a signed purge says it kept."""
        start = self.start or {"seq": 1, "previous": GENESIS}
        if first.header["seq"] != start["seq"] or first.header["previous"] != start["previous"]:
            self._problem(first, f"the chain should start at checkpoint {start['seq']}: older checkpoints were removed")

    def _find(self, kind: str, row_id: int, consent_id: str | None, message: str) -> None:
        self.report.findings.append(Finding(kind, row_id, consent_id, message))

    def run(self, records: Iterable[Row | Block]) -> Report:
        """Stream ``records`` (in the order stored or written) against the seals; return the report."""
        self.index, self.previous_id = 0, 0
        self.batch = self._batch(0)
        for record in records:
            if isinstance(record, Block):
                if not self._take_block(record):
                    for row in record.rows():
                        self._take(row)
            else:
                self._take(record)
        self._advance(None)
        self.report.findings.extend(finding for finding, _ in self.removed.values())
        return self.report

    def _take(self, row: Row) -> None:
        self.report.checked += 1
        if not row.content_ok:
            self._find("changed", row.id, row.consent_id, "its fields do not match its record_hash")
        if row.id <= self.previous_id:
            self._find("reordered", row.id, row.consent_id, f"out of order: comes after record {self.previous_id}")
            self._late(row, self.batch)
            return
        self.previous_id = row.id
        self._advance(row.id)
        batch = self.batch
        if batch is None:
            self._beyond(row)
        elif row.id <= batch.seal.header["after_id"]:
            self._find("inserted", row.id, row.consent_id, "not in the sealed log")
        else:
            batch.ids.append(row.id)
            batch.digests.append(row.record_hash[:32])
            batch.consent_ids.append(row.consent_id)

    def _advance(self, record_id: int | None) -> None:
        """Finish the seals that end before ``record_id`` (None: all of them)."""
        while self.batch is not None and (record_id is None or record_id > self.batch.seal.header["last_id"]):
            self._finish(self.batch)
            self.index += 1
            self.batch = self._batch(self.index)

    def _take_block(self, block: Block) -> bool:
        """Settle ``block`` at once if it is exactly what its seal holds, or an intact unsealed tail."""
        if block.count == 0:
            return True
        ids = pair_ids(block.pairs)
        if len(ids) != block.count or not block.content_ok or ids[0] <= self.previous_id:
            return False
        if any(low >= high for low, high in zip(ids, ids[1:], strict=False)):
            return False
        self._advance(ids[0])
        batch = self.batch
        if batch is None:
            if not self.tail_allowed:
                return False
            self.report.checked += block.count
            self.report.unsealed += block.count
            self.previous_id = ids[-1]
            return True
        header = batch.seal.header
        # All of the seal's records are in the block, and only they.
        covers = block.first <= header["after_id"] + 1 and block.last >= header["last_id"]
        inside = header["after_id"] < ids[0] and ids[-1] <= header["last_id"]
        if not (covers and inside) or batch.ids or not batch.trusted:
            return False
        seal = self.load(batch.seal)
        if not seal.leaves_intact():
            return False
        expected, absent = self._expected(seal)
        if expected != block.pairs:
            return False
        self.report.checked += block.count
        self.report.sealed += block.count
        self.report.erased += absent["erased"]
        self.report.purged += absent["purged"]
        self.report.outside += absent["outside"]
        self.previous_id = ids[-1]
        self.index += 1
        self.batch = self._batch(self.index)
        return True

    def _expected(self, seal: Checkpoint) -> tuple[bytes, dict[str, int]]:
        """The pairs of the seal's leaves whose records must be there, and how many may be absent, by reason."""
        absent = {"erased": 0, "purged": 0, "outside": 0}
        if not self._may_lack(seal):
            return leaf_pairs(seal.leaves), absent
        kept = bytearray()
        for position, leaf in enumerate(unpack_leaves(seal.leaves)):
            reason = self._absence(leaf)
            if reason is None:
                kept += leaf_pairs(seal.leaves[position * 40 : position * 40 + 40])
            else:
                absent[reason] += 1
        return bytes(kept), absent

    def _may_lack(self, seal: Checkpoint) -> bool:
        """Whether an erasure, a purge or the exported range may account for a missing record of ``seal``."""
        header = seal.header
        if self.erased_ids:
            position = bisect.bisect_right(self.erased_ids, header["after_id"])
            if position < len(self.erased_ids) and self.erased_ids[position] <= header["last_id"]:
                return True
        since, until = self.scope
        if self.purge_cutoff is None and since is None and until is None:
            return False
        if header.get("first_at") is None or header.get("last_at") is None:
            return True
        first, last = iso_ms(header["first_at"]), iso_ms(header["last_at"])
        return (
            (self.purge_cutoff is not None and first < self.purge_cutoff)
            or (since is not None and first < since)
            or (until is not None and last >= until)
        )

    def _absence(self, leaf: tuple[int, int, bytes, bytes]) -> str | None:
        """Why the record of ``leaf`` may be missing: erased, purged, outside (the exported range), or None."""
        row_id, moment, _, digest = leaf
        since, until = self.scope
        if (row_id, digest) in self.erased:
            return "erased"
        if self.purge_cutoff is not None and moment < self.purge_cutoff:
            return "purged"
        if (since is not None and moment < since) or (until is not None and moment >= until):
            return "outside"
        return None

    def _batch(self, index: int) -> _Batch | None:
        if index >= len(self.seals):
            return None
        seal, trusted = self.seals[index]
        return _Batch(seal, trusted)

    def _beyond(self, row: Row) -> None:
        if self.tail_allowed:
            self.report.unsealed += 1
        else:
            self._find("inserted", row.id, row.consent_id, "not among the exported records")

    def _finish(self, batch: _Batch) -> None:
        seal = self.load(batch.seal)
        if batch.trusted and not seal.leaves_intact():
            self._problem(seal, "its leaves do not match its signed root")
            batch.trusted = False
        if not batch.trusted:
            self.report.unproven += len(batch.ids)
            return
        leaves = unpack_leaves(seal.leaves)
        if [leaf[0] for leaf in leaves] == batch.ids and [leaf[3].hex() for leaf in leaves] == batch.digests:
            self.report.sealed += len(leaves)
            return
        expected = {leaf[0]: (position, leaf) for position, leaf in enumerate(leaves)}
        sealed_as = {leaf[3].hex(): leaf[0] for leaf in leaves}
        present = set()
        for row_id, digest, consent_id in zip(batch.ids, batch.digests, batch.consent_ids, strict=True):
            present.add(row_id)
            if row_id not in expected:
                self._find("inserted", row_id, consent_id, "not in the sealed log")
            elif expected[row_id][1][3].hex() == digest:
                self.report.sealed += 1
            elif digest in sealed_as:
                self._find("reordered", row_id, consent_id, f"holds the record sealed as record {sealed_as[digest]}")
            else:
                self._find("changed", row_id, consent_id, "differs from the record that was sealed")
        for row_id, (position, leaf) in expected.items():
            if row_id not in present:
                raw_label = seal.labels[position * 16 : position * 16 + 16]
                self._absent(leaf, label_text(raw_label, leaf[2]) if len(raw_label) == 16 else None)

    def _absent(self, leaf: tuple[int, int, bytes, bytes], consent_id: str | None) -> None:
        reason = self._absence(leaf)
        if reason == "erased":
            self.report.erased += 1
        elif reason == "purged":
            self.report.purged += 1
        elif reason == "outside":
            self.report.outside += 1
        else:
            row_id, _, _, digest = leaf
            finding = Finding("removed", row_id, consent_id, "sealed, but missing")
            self.removed[row_id] = (finding, digest.hex())

    def _late(self, row: Row, batch: _Batch | None) -> None:
        """A record met after a higher id: match it wherever it belongs."""
        position = bisect.bisect_left(self.seal_ends, row.id)
        if batch is not None and position < len(self.seals) and self.seals[position][0] is batch.seal:
            batch.ids.append(row.id)
            batch.digests.append(row.record_hash[:32])
            batch.consent_ids.append(row.consent_id)
        elif row.id in self.removed:
            _, digest = self.removed.pop(row.id)
            if digest == row.record_hash[:32]:
                self.report.sealed += 1
            else:
                self._find("changed", row.id, row.consent_id, "differs from the record that was sealed")
        else:
            self._find("inserted", row.id, row.consent_id, "not in the sealed log")
