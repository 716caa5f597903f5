"""Tiles: the hashes of the complete subtrees of 256, 65,536, ... leaves, so that any proof is cheap.

A tile of level L holds up to 256 hashes of subtrees of 256**L leaves; leaf
hashes (level 0) are read from the seals. Any complete subtree of the tree is
then the root of at most 128 stored hashes, and a root or a proof for any size
takes a handful of reads, however large the log. Tiles are not signed and not
trusted: verification recomputes the tree from the leaves.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.ledger import tree
from consent.ledger.leaves import leaf_hashes
from consent.ledger.seals import leaves_between
from consent.store.database import dialect_insert
from consent.store.models import LedgerTile, db

WIDTH = 256
BITS = 8  # log2(WIDTH)


def _tile(site: str, level: int, index: int, session: Session | None = None) -> bytes:
    found = (session or db.session).scalar(
        select(LedgerTile.hashes).where(LedgerTile.site == site, LedgerTile.level == level, LedgerTile.index == index)
    )
    return bytes(found) if found is not None else b""


def _store(site: str, level: int, index: int, hashes: bytes) -> None:
    statement = dialect_insert(LedgerTile.__table__).values(site=site, level=level, idx=index, hashes=hashes)
    db.session.execute(
        statement.on_conflict_do_update(index_elements=["site", "level", "idx"], set_={"hashes": hashes})
    )


def append(site: str, size: int, new: list[bytes]) -> None:
    """Record the subtrees that the leaves ``new``, appended to a tree of ``size`` leaves, complete."""
    completed: list[tuple[int, bytes]] = []  # (index at level 1, hash) of each newly complete 256-leaf subtree
    first_block = size // WIDTH
    if size % WIDTH and size % WIDTH + len(new) >= WIDTH:
        earlier = leaf_hashes(leaves_between(site, first_block * WIDTH, size))
        completed.append((first_block, tree.root(earlier + new[: WIDTH - size % WIDTH])))
        offset, block = WIDTH - size % WIDTH, first_block + 1
    elif size % WIDTH:
        return
    else:
        offset, block = 0, first_block
    while offset + WIDTH <= len(new):
        completed.append((block, tree.root(new[offset : offset + WIDTH])))
        offset, block = offset + WIDTH, block + 1
    level = 1
    while completed:
        completed = _add(site, level, completed)
        level += 1


def _add(site: str, level: int, nodes: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Put ``nodes`` (consecutive, by index) into the tiles of ``level``; the tiles they complete, one level up."""
    upward: list[tuple[int, bytes]] = []
    tiles: dict[int, bytearray] = {}
    for index, value in nodes:
        tile, position = divmod(index, WIDTH)
        if tile not in tiles:
            tiles[tile] = bytearray(_tile(site, level, tile))
        hashes = tiles[tile]
        if len(hashes) != position * 32:
            raise RuntimeError(f"tile {level}/{tile} of {site} holds {len(hashes) // 32} hashes, not {position}")
        hashes += value
        if position == WIDTH - 1:
            upward.append((tile, tree.root([bytes(hashes[i : i + 32]) for i in range(0, len(hashes), 32)])))
    for tile, hashes in tiles.items():
        _store(site, level, tile, bytes(hashes))
    return upward


class StoredTree:
    """A site's tree as stored, read through the tiles; ``hash_range`` as the proofs in ``tree`` want it.

    Read through ``session`` (an export's snapshot), or the app's session.
    """

    def __init__(self, site: str, session: Session | None = None) -> None:
        self.site, self.session = site, session
        self.tiles: dict[tuple[int, int], bytes] = {}
        self.hash_range = lru_cache(maxsize=256)(self._hash_range)

    def _cached(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self.tiles:
            self.tiles[key] = _tile(self.site, level, index, self.session)
        return self.tiles[key]

    def complete(self, height: int, index: int) -> bytes:
        """The hash of the complete subtree of 2**height leaves numbered ``index`` at that height."""
        level, rest = divmod(height, BITS)
        start, count = index << rest, 1 << rest  # at most 128 nodes of the tile's height
        if level == 0:
            hashes = leaf_hashes(leaves_between(self.site, start, start + count, self.session))
        else:
            tile = self._cached(level, start // WIDTH)
            offset = start % WIDTH * 32
            hashes = [tile[i : i + 32] for i in range(offset, offset + count * 32, 32)]
        if len(hashes) != count or any(len(value) != 32 for value in hashes):
            raise LookupError(f"{self.site}: the subtree {height}/{index} is not stored")
        return tree.root(hashes)

    def _hash_range(self, start: int, end: int) -> bytes:
        count = end - start
        if count > 0 and count & (count - 1) == 0 and start % count == 0:
            return self.complete(count.bit_length() - 1, start // count)
        if count == 0:
            return tree.EMPTY_ROOT
        k = tree.split(count)
        return tree.node_hash(self.hash_range(start, start + k), self.hash_range(start + k, end))

    def root(self, size: int) -> bytes:
        return self.hash_range(0, size)
