"""Merkle tree hashing and proofs, as RFC 9162 (Certificate Transparency 2.0) defines them, section 2.1.

Leaves are given as their leaf hashes, ``SHA-256(0x00 || entry)``; an inner
node is ``SHA-256(0x01 || left || right)``. A tree of ``n`` leaves splits at
the largest power of two below ``n``. Besides the RFC's inclusion and
consistency proofs there is a *range proof*: the hashes that, with the leaves
``[start, end)`` themselves, give the root of a tree of ``size`` leaves; an
export's proof uses it to tie every exported record to one signed head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
HashRange = Callable[[int, int], bytes]  # MTH(D[start:end]) of a stored tree


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one leaf entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def root(hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves whose leaf hashes are ``hashes``.

    Pairing neighbours level by level, an odd last node carried up as it is,
    builds exactly the RFC's tree, without recursion.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    sha256 = hashlib.sha256
    while len(level) > 1:
        paired = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class Frontier:
    """The growing tree's complete subtrees, largest first: its root at every size, in O(log n) memory.

    A run of leaves that starts where a subtree of its size may start is taken
    as that whole subtree, hashed level by level, rather than leaf by leaf.
    """

    def __init__(self, size: int = 0, nodes: list[tuple[int, bytes]] | None = None) -> None:
        self.size = size
        self.nodes: list[tuple[int, bytes]] = nodes or []  # (height, hash)

    def append(self, hashes: Iterable[bytes]) -> None:
        values = list(hashes)
        at = 0
        while at < len(values):
            height = (len(values) - at).bit_length() - 1
            if self.size:  # no larger than the subtrees already there allow
                height = min(height, (self.size & -self.size).bit_length() - 1)
            count = 1 << height
            carry = root(values[at : at + count])
            while self.nodes and self.nodes[-1][0] == height:
                carry = node_hash(self.nodes.pop()[1], carry)
                height += 1
            self.nodes.append((height, carry))
            self.size += count
            at += count

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        value = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            value = node_hash(left, value)
        return value


def inclusion_proof(index: int, size: int, hash_range: HashRange) -> list[bytes]:
    """PATH(index, D[size]): the audit path of leaf ``index``, nearest sibling first (RFC 9162, 2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            path.append(hash_range(start + k, end))
            end = start + k
        else:
            path.append(hash_range(start, start + k))
            start += k
    return path[::-1]


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root_hash: bytes) -> bool:
    """Whether ``path`` proves leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root_hash`` (2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, value = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            value = node_hash(sibling, value)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            value = node_hash(value, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and value == root_hash


def consistency_proof(first: int, second: int, hash_range: HashRange) -> list[bytes]:
    """PROOF(first, D[second]): that the tree of ``first`` leaves is a prefix of the tree of ``second`` (2.1.4.1)."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    start, end, whole = 0, second, True
    m = first
    while m != end - start:
        k = split(end - start)
        if m <= k:
            proof.append(hash_range(start + k, end))
            end = start + k
        else:
            proof.append(hash_range(start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(hash_range(start, end))
    return proof[::-1]


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree of ``first`` leaves (``first_root``) is a prefix of the ``second`` (2.1.4.2)."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof  # the empty tree is a prefix of every tree
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the old root is itself a node of the new tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for value in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(value, fr), node_hash(value, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, value)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def range_proof(start: int, end: int, size: int, hash_range: HashRange) -> list[bytes]:
    """The hashes of the largest subtrees outside ``[start, end)``, left to right, as ``range_root`` reads them."""
    if not 0 <= start <= end <= size:
        raise ValueError(f"no range [{start}, {end}) in a tree of {size}")
    proof: list[bytes] = []

    def visit(low: int, high: int) -> None:
        if high <= start or low >= end:
            proof.append(hash_range(low, high))
        elif not (start <= low and high <= end):
            k = split(high - low)
            visit(low, low + k)
            visit(low + k, high)

    if size:
        visit(0, size)
    return proof


def range_root(start: int, size: int, leaves: Sequence[bytes], proof: Sequence[bytes]) -> bytes | None:
    """The root of a tree of ``size`` leaves from its leaves ``[start, start + len(leaves))`` and their range proof.

    None if the proof has too few or too many hashes.
    """
    end = start + len(leaves)
    if not 0 <= start <= end <= size:
        return None
    if size == 0:
        return EMPTY_ROOT if not proof else None
    taken = iter(proof)
    used = 0

    def visit(low: int, high: int) -> bytes | None:
        nonlocal used
        if high <= start or low >= end:
            used += 1
            return next(taken, None)
        if start <= low and high <= end:
            return root(leaves[low - start : high - start])
        k = split(high - low)
        left, right = visit(low, low + k), visit(low + k, high)
        return node_hash(left, right) if left is not None and right is not None else None

    value = visit(0, size)
    return value if value is not None and used == len(proof) else None
