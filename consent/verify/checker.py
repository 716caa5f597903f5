"""Checking records against the seals: every changed, removed, inserted or reordered record, by name.

Which seals can be trusted is settled first, against the signed tree heads
(consent.verify.live for the stored log, consent.verify.offline for a proof).
The records come in id order (from the database, or as written in a file) and
are matched against the seals' leaves one seal at a time, so memory stays at
one seal's worth. They come one by one (``Row``) or a seal's
worth at a time (``Block``): a block whose id-and-digest pairs are byte for
byte the ones its seal holds is settled with one comparison; any other block
is looked at record by record, exactly as if its rows had come one by one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from consent.ledger.leaves import LABEL_SIZE, LEAF, Seal, label_text, leaf_pairs, pair_ids, unpack_leaves


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
    count: int  # type: ignore[assignment]  # shadows tuple.count, which nothing here calls
    content_ok: bool
    pairs: bytes
    rows: Callable[[], Iterable[Row]]


@dataclass(frozen=True)
class Finding:
    kind: str  # changed | removed | inserted | reordered | unsealed | backdated | ledger
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
    unproven: int = 0
    head: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


class Erasures:
    """The tree positions whose records signed erasures removed, as disjoint sorted ``[start, end)`` ranges."""

    def __init__(self, ranges: Sequence[tuple[int, int, str]] = ()) -> None:
        merged: list[list[Any]] = []
        for start, end, kind in sorted(ranges):
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)  # an overlap keeps the first kind: either explains it
            else:
                merged.append([start, end, kind])
        self.ranges = [(start, end, kind) for start, end, kind in merged]
        self.starts = [start for start, _, _ in self.ranges]

    def kind(self, position: int) -> str | None:
        """``forget`` or ``purge`` if an erasure covers ``position``, else None."""
        at = bisect.bisect_right(self.starts, position) - 1
        if at >= 0 and position < self.ranges[at][1]:
            return self.ranges[at][2]
        return None

    def overlap(self, start: int, end: int) -> bool:
        """Whether any erased position lies in ``[start, end)``."""
        at = bisect.bisect_left(self.starts, end) - 1
        return at >= 0 and self.ranges[at][1] > start


@dataclass
class _Batch:
    """The records met so far within one seal."""

    seal: Seal
    trusted: bool = True
    ids: list[int] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    consent_ids: list[str] = field(default_factory=list)


class Verifier:
    """Streams one site's records against its seals, in id order.

    ``seals``: each with whether the signed heads vouch for it. ``erased``:
    where signed erasures allow a record to be absent. ``tail_allowed``:
    records after the last seal count as not sealed yet (the live log) rather
    than inserted (a file). ``load`` fetches a seal's leaves and labels.
    """

    def __init__(
        self,
        site: str,
        seals: Sequence[tuple[Seal, bool]],
        erased: Erasures | None = None,
        *,
        tail_allowed: bool = True,
        load: Callable[[Seal], Seal] = lambda seal: seal,
    ) -> None:
        self.report = Report(site)
        self.tail_allowed, self.load = tail_allowed, load
        self.seals = list(seals)
        self.erased = erased or Erasures()
        self.removed: dict[int, tuple[Finding, str]] = {}
        self.seal_ends = [seal.last_id for seal, _ in self.seals]

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
        elif row.id <= batch.seal.after_id:
            self._find("inserted", row.id, row.consent_id, "not in the sealed log")
        else:
            batch.ids.append(row.id)
            batch.digests.append(row.record_hash[:32])
            batch.consent_ids.append(row.consent_id)

    def _advance(self, record_id: int | None) -> None:
        """Finish the seals that end before ``record_id`` (None: all of them)."""
        while self.batch is not None and (record_id is None or record_id > self.batch.seal.last_id):
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
        seal = batch.seal
        # All of the seal's records are in the block, and only they.
        covers = block.first <= seal.after_id + 1 and block.last >= seal.last_id
        inside = seal.after_id < ids[0] and ids[-1] <= seal.last_id
        if not (covers and inside) or batch.ids or not batch.trusted:
            return False
        seal = self.load(seal)
        expected, absent = self._expected(seal)
        if expected != block.pairs:
            return False
        self.report.checked += block.count
        self.report.sealed += block.count
        self.report.erased += absent["erased"]
        self.report.purged += absent["purged"]
        self.previous_id = ids[-1]
        self.index += 1
        self.batch = self._batch(self.index)
        return True

    def _expected(self, seal: Seal) -> tuple[bytes, dict[str, int]]:
        """The pairs of the seal's leaves whose records must be there, and how many may be absent, by reason."""
        absent = {"erased": 0, "purged": 0}
        if not self.erased.overlap(seal.first_index, seal.end_index):
            return leaf_pairs(seal.leaves), absent
        kept = bytearray()
        size = LEAF.size
        for position in range(seal.leaf_count):
            reason = self._absence(seal.first_index + position)
            if reason is None:
                kept += leaf_pairs(seal.leaves[position * size : (position + 1) * size])
            else:
                absent[reason] += 1
        return bytes(kept), absent

    def _absence(self, position: int) -> str | None:
        """Why the record of the leaf at ``position`` may be missing: erased (forget), purged, or None."""
        kind = self.erased.kind(position)
        return None if kind is None else ("erased" if kind == "forget" else "purged")

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
        if not batch.trusted:
            self.report.unproven += len(batch.ids)
            return
        seal = self.load(batch.seal)
        leaves = unpack_leaves(seal.leaves)
        if [leaf[0] for leaf in leaves] == batch.ids and [leaf[3].hex()[:32] for leaf in leaves] == batch.digests:
            self.report.sealed += len(leaves)
            return
        expected = {leaf[0]: (position, leaf) for position, leaf in enumerate(leaves)}
        sealed_as = {leaf[3].hex()[:32]: leaf[0] for leaf in leaves}
        present = set()
        for row_id, digest, consent_id in zip(batch.ids, batch.digests, batch.consent_ids, strict=True):
            present.add(row_id)
            if row_id not in expected:
                self._find("inserted", row_id, consent_id, "not in the sealed log")
            elif expected[row_id][1][3].hex()[:32] == digest:
                self.report.sealed += 1
            elif digest in sealed_as:
                self._find("reordered", row_id, consent_id, f"holds the record sealed as record {sealed_as[digest]}")
            else:
                self._find("changed", row_id, consent_id, "differs from the record that was sealed")
        for row_id, (position, leaf) in expected.items():
            if row_id not in present:
                raw_label = seal.labels[position * LABEL_SIZE : (position + 1) * LABEL_SIZE]
                self._absent(seal.first_index + position, leaf, label_text(raw_label, leaf[2]))

    def _absent(self, position: int, leaf: tuple[int, int, bytes, bytes], consent_id: str | None) -> None:
        reason = self._absence(position)
        if reason == "erased":
            self.report.erased += 1
        elif reason == "purged":
            self.report.purged += 1
        else:
            row_id, _, _, digest = leaf
            finding = Finding("removed", row_id, consent_id, "sealed, but missing")
            self.removed[row_id] = (finding, digest.hex()[:32])

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
