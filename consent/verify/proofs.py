"""Checking the ledger itself: heads signed by trusted keys, seals that follow each other, roots that match.

Used on the stored log (consent.verify.live) and on an export's proof
(consent.verify.offline) alike: given the seals in order with their leaves,
the heads and the trusted public keys, it recomputes the tree from the leaves
and compares its root at every head's size. A seal is vouched for when the
first head at or after its end matches; every problem is a finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from consent.ledger import tree
from consent.ledger.leaves import Seal, leaf_hashes, unpack_leaves
from consent.ledger.signing import ERASURE, TREE_HEAD, PublicKey, check
from consent.timestamps import from_epoch_ms, iso, parse_iso
from consent.verify.checker import Erasures, Finding


@dataclass
class TreeCheck:
    """The outcome: findings about the ledger, which seals are vouched for, the newest good head."""

    site: str
    findings: list[Finding] = field(default_factory=list)
    trusted: dict[int, bool] = field(default_factory=dict)  # by seal seq
    newest: dict[str, Any] | None = None
    size: int = 0

    def problem(self, message: str) -> None:
        self.findings.append(Finding("ledger", None, None, message))


def good_heads(
    check_: TreeCheck, heads: Iterable[dict[str, Any]], keys: dict[str, PublicKey], what: str
) -> list[dict[str, Any]]:
    """The heads that are validly signed for this site; a finding for each other one."""
    good = []
    for head in heads:
        why = check(head, keys, TREE_HEAD)
        if why is None and head.get("site") != check_.site:
            why = f"it is a head of site {head.get('site')!r}"
        if why is None and not (isinstance(head.get("tree_size"), int) and isinstance(head.get("root_hash"), str)):
            why = "it has no tree_size and root_hash"
        if why is not None:
            check_.problem(f"{what} of size {head.get('tree_size')!r}: {why}")
        else:
            good.append(head)
    return good


def erasures(check_: TreeCheck, signed: Iterable[dict[str, Any]], keys: dict[str, PublicKey]) -> Erasures:
    """The positions that validly signed erasures cover; a finding for each erasure that is not valid."""
    ranges = []
    for event in signed:
        why = check(event, keys, ERASURE, at="at")
        if why is None and event.get("site") != check_.site:
            why = f"it is an erasure of site {event.get('site')!r}"
        if why is not None:
            check_.problem(f"erasure of {event.get('at')!r}: {why}; the records it names count as removed")
            continue
        for start, end in event.get("leaves", []):
            ranges.append((int(start), int(end), str(event.get("kind"))))
    return Erasures(ranges)


def check_tree(
    check_: TreeCheck,
    seals: Iterable[Seal],
    heads: list[dict[str, Any]],
    witnessed: Sequence[dict[str, Any]] = (),
    *,
    start: int = 0,
    frontier: tree.Frontier | None = None,
    backdated_after: float | None = None,
) -> Iterator[Seal]:
    """Walk the seals (yielding each, leaves read), recomputing the tree; compare every head's root on the way.

    ``heads``: validly signed heads of this log; ``witnessed``: heads seen
    outside it (a witness's store, a receipt), checked the same way.
    ``backdated_after``: seconds; a leaf recorded that long before the head
    that preceded its seal was signed is named backdated.
    """
    frontier = frontier or tree.Frontier(start)
    wanted: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for head in heads:
        wanted.setdefault(head["tree_size"], []).append(("head", head))
    for head in witnessed:
        wanted.setdefault(head["tree_size"], []).append(("witnessed head", head))
    sizes = sorted(size for size in wanted if size > frontier.size)
    if frontier.size in wanted:
        _compare(check_, frontier, wanted[frontier.size])
    pending: list[Seal] = []  # seals not yet vouched for by a matching head
    tainted: set[int] = set()  # seals partly under a head that does not match
    previous_head: dict[str, Any] | None = None
    expected_after: int | None = None
    at = 0
    for seal in seals:
        if seal.first_index != frontier.size:
            check_.problem(
                f"seal {seal.seq} starts at leaf {seal.first_index}, but the seals before end at {frontier.size}"
            )
        if expected_after is not None and seal.after_id != expected_after:
            check_.problem(
                f"seal {seal.seq} follows record {seal.after_id}, but the seal before ended at {expected_after}"
            )
        expected_after = seal.last_id
        hashes = leaf_hashes(seal.leaves)
        if backdated_after is not None and previous_head is not None:
            _backdated(check_, seal, previous_head, backdated_after)
        offset = 0
        end = frontier.size + len(hashes)
        pending.append(seal)
        while at < len(sizes) and sizes[at] <= end:
            size = sizes[at]
            frontier.append(hashes[offset : offset + size - frontier.size])
            offset = len(hashes) - (end - size)
            good = _compare(check_, frontier, wanted[size])
            own = [head for kind, head in wanted[size] if kind == "head"]
            if own:
                previous_head = own[0]
                for done in pending:
                    if done.end_index <= size:
                        check_.trusted[done.seq] = good and done.seq not in tainted
                    elif not good:
                        tainted.add(done.seq)
                pending = [done for done in pending if done.end_index > size]
            at += 1
        frontier.append(hashes[offset:])
        yield seal
    check_.size = frontier.size
    for seal in pending:
        check_.trusted.setdefault(seal.seq, False)
        check_.problem(f"seal {seal.seq} (leaves {seal.first_index}..{seal.end_index - 1}) is under no signed head")
    for size in sizes[at:]:
        for kind, head in wanted[size]:
            check_.problem(
                f"the {kind} of {head.get('timestamp')} covers {size} leaves, but the log holds {frontier.size}: "
                "records were removed (a truncation or a rollback)"
            )
    if heads:
        check_.newest = max(heads, key=lambda head: head["tree_size"])


def _compare(check_: TreeCheck, frontier: tree.Frontier, heads: list[tuple[str, dict[str, Any]]]) -> bool:
    ok = True
    value = frontier.root().hex()
    for kind, head in heads:
        if head["root_hash"] != value:
            ok = False
            check_.problem(
                f"the {kind} of {head.get('timestamp')} (size {head['tree_size']}) does not match the leaves: "
                "the log was rewritten behind it"
            )
    return ok


def _backdated(check_: TreeCheck, seal: Seal, head: dict[str, Any], slack: float) -> None:
    signed = parse_iso(head["timestamp"])
    if signed is None:
        return
    limit = signed.timestamp() * 1000 - slack * 1000
    for record_id, moment, _, _ in unpack_leaves(seal.leaves):
        if moment < limit:
            check_.findings.append(
                Finding(
                    "backdated",
                    record_id,
                    None,
                    f"recorded at {iso(from_epoch_ms(moment))}, before the head of {head['timestamp']} "
                    "that left it out",
                )
            )
