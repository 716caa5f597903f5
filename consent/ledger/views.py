"""The ledger's public routes: signed tree heads, consistency and inclusion proofs (see consent.ledger.heads).

Heads and consistency proofs are public and briefly cacheable: anyone may
witness the log. An inclusion proof names a visitor's record, so it is for an
admin or for the browser holding that visitor's access token.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import func, select

from consent.inventory.sites import get_site
from consent.ledger import heads, tree
from consent.ledger.leaves import LEAF, leaf_hashes
from consent.ledger.tiles import BITS, WIDTH, StoredTree
from consent.log.tokens import check_receipt
from consent.store.models import ConsentRecord, LedgerHead, LedgerSeal, db
from consent.web.auth import is_admin
from consent.web.cors import allow_origin, cors_headers, preflight
from consent.web.errors import ApiError

bp = Blueprint("ledger", __name__, url_prefix="/api/v1")
bp.after_request(cors_headers)

BRIEFLY = "public, max-age=5"


class ConsistencyQuery(Schema):
    """The query of ``GET …/ledger/consistency``."""

    class Meta:
        unknown = EXCLUDE  # cache busters and the like

    first = fields.Integer(data_key="from", required=True, validate=validate.Range(0))
    second = fields.Integer(data_key="to", load_default=None, validate=validate.Range(0))


class InclusionQuery(Schema):
    """The query of ``GET …/ledger/inclusion``."""

    class Meta:
        unknown = EXCLUDE

    record = fields.Integer(required=True, validate=validate.Range(1, 2**63 - 1))  # what a BIGINT id holds


CONSISTENCY_QUERY = ConsistencyQuery()
INCLUSION_QUERY = InclusionQuery()


def _query(schema: Schema) -> dict[str, Any]:
    try:
        return schema.load(request.args)
    except ValidationError as error:
        raise ApiError(422, "invalid query", error.normalized_messages()) from error


def _newest(site: str) -> LedgerHead:
    head = heads.latest(site)
    if head is None:
        raise ApiError(404, f"site {site!r} has no signed tree head yet")
    return head


class SealedTree(StoredTree):
    """The tree under one head, for one record: the lowest nodes from its seal's leaves, the rest from ``shared``.

    ``shared`` is the head's StoredTree, kept across requests (``head_tree``):
    every proof against one head needs the same nodes along its right edge.
    """

    def __init__(self, shared: StoredTree, first_index: int, leaves: bytes) -> None:
        super().__init__(shared.site)
        self.shared, self.first_index, self.leaves = shared, first_index, leaves

    def complete(self, height: int, index: int) -> bytes:
        start, count = (index << height) - self.first_index, 1 << height
        if height < BITS and 0 <= start and (start + count) * LEAF.size <= len(self.leaves):
            return tree.root(leaf_hashes(self.leaves[start * LEAF.size : (start + count) * LEAF.size]))
        return self.shared.hash_range(index << height, (index << height) + count)


_head_trees: OrderedDict[tuple[str, str, int, str], StoredTree] = OrderedDict()
HEAD_TREES = 8


def head_tree(head: LedgerHead) -> StoredTree:
    """The stored tree under ``head``, its tiles and nodes cached per process while that head is among the newest.

    Keyed by the head's root as well: a tree rebuilt under the same size (a
    rollback, a test's fresh database) never answers from another's cache.
    """
    key = (str(db.engine.url), head.site, head.tree_size, head.root_hash)
    found = _head_trees.get(key)
    if found is None:
        found = _head_trees[key] = StoredTree(head.site)
        while len(_head_trees) > HEAD_TREES:
            _head_trees.popitem(last=False)
    _head_trees.move_to_end(key)
    return found


def _seal_leaves(site: str, record_id: int) -> tuple[int, bytes] | None:
    """The position of the first and the leaves of the seal that holds ``record_id``, whole (not its labels)."""
    found = db.session.execute(
        select(LedgerSeal.first_index, LedgerSeal.leaves).where(
            LedgerSeal.site == site, LedgerSeal.after_id < record_id, LedgerSeal.last_id >= record_id
        )
    ).first()
    return (found.first_index, bytes(found.leaves)) if found is not None else None


def _leaf_window(site: str, record_id: int) -> tuple[int, bytes] | None:
    """The 256 leaves (an aligned block) where ``record_id``'s leaf is likeliest, read alone, with the first's position.

    Ids only grow within a seal, so the leaf is at most ``record_id - after_id - 1``
    leaves in, and exactly there unless other sites' ids come between: reading
    that block instead of a seal of 10,000 leaves is most of an inclusion proof's cost.
    """
    seal = db.session.execute(
        select(LedgerSeal.id, LedgerSeal.first_index, LedgerSeal.leaf_count, LedgerSeal.after_id).where(
            LedgerSeal.site == site, LedgerSeal.after_id < record_id, LedgerSeal.last_id >= record_id
        )
    ).first()
    if seal is None or not seal.leaf_count:
        return None
    guess = seal.first_index + min(record_id - seal.after_id - 1, seal.leaf_count - 1)
    low = max(seal.first_index, guess - guess % WIDTH)
    high = min(seal.first_index + seal.leaf_count, guess - guess % WIDTH + WIDTH)
    window = db.session.scalar(
        select(
            func.substr(LedgerSeal.leaves, (low - seal.first_index) * LEAF.size + 1, (high - low) * LEAF.size)
        ).where(LedgerSeal.id == seal.id)
    )
    return (low, bytes(window)) if window is not None else None


def _leaf_index(first_index: int, leaves: bytes, record_id: int, record_hash: str) -> int | None:
    """The position of ``record_id``'s leaf in a seal's leaves (sorted by id: a binary search); None if absent."""
    size, low, high = LEAF.size, 0, len(leaves) // LEAF.size
    while low < high:
        middle = (low + high) // 2
        if int.from_bytes(leaves[middle * size : middle * size + 8], "big") < record_id:
            low = middle + 1
        else:
            high = middle
    if low * size >= len(leaves):
        return None
    row_id, _, _, digest = LEAF.unpack_from(leaves, low * size)
    if row_id != record_id or digest.hex() != record_hash:
        return None
    return first_index + low


@bp.get("/sites/<site>/ledger/head")
def head_view(site: str) -> ResponseReturnValue:
    """The site's newest signed tree head."""
    current = get_site(site)
    response = jsonify(heads.as_json(_newest(current.key)))
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = BRIEFLY
    return response


@bp.get("/sites/<site>/ledger/consistency")
def consistency_view(site: str) -> ResponseReturnValue:
    """An RFC 9162 consistency proof between two sizes of the site's tree (``to`` defaults to the newest head)."""
    current = get_site(site)
    query = _query(CONSISTENCY_QUERY)
    newest = _newest(current.key).tree_size
    first, second = query["first"], query["second"] if query["second"] is not None else newest
    if second > newest:
        raise ApiError(422, "invalid query", {"to": [f"must be at most {newest}, the newest head's size"]})
    if first > second:
        raise ApiError(422, "invalid query", {"from": [f"must be at most to ({second})"]})
    proof = tree.consistency_proof(first, second, StoredTree(current.key).hash_range)
    from_head, to_head = heads.at_size(current.key, first), heads.at_size(current.key, second)
    response = jsonify(
        {
            "site": current.key,
            "from": first,
            "to": second,
            "proof": [value.hex() for value in proof],
            "from_head": heads.as_json(from_head) if from_head is not None else None,
            "to_head": heads.as_json(to_head) if to_head is not None else None,
        }
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = BRIEFLY
    return response


@bp.route("/sites/<site>/ledger/inclusion", methods=["GET", "OPTIONS"])
def inclusion_view(site: str) -> ResponseReturnValue:
    """The RFC 9162 audit path of one record against the newest head, for an admin or the visitor's access token."""
    current = get_site(site)
    allow_origin(current, admin_may_omit=True)
    if request.method == "OPTIONS":
        return preflight("GET", "X-Consent-Receipt")
    admin = is_admin()
    token = request.headers.get("X-Consent-Receipt")
    if not admin and not token:
        raise ApiError(403, "an inclusion proof needs the visitor's access token (X-Consent-Receipt) or an admin")
    record_id = _query(INCLUSION_QUERY)["record"]
    record = db.session.get(ConsentRecord, record_id)
    if record is not None and record.site != current.key:
        record = None
    if not admin:
        # Whoever holds no token of this record's consent ID learns nothing, not even whether it exists.
        check_receipt(current.key, record.consent_id if record is not None else "", token)
    if record is None:
        raise ApiError(404, f"no record {record_id} on site {current.key!r}")
    seal = _leaf_window(current.key, record_id)
    index = _leaf_index(*seal, record_id, record.record_hash) if seal else None
    if seal is not None and index is None:  # other sites' records in between: search the whole seal
        seal = _seal_leaves(current.key, record_id)
        index = _leaf_index(*seal, record_id, record.record_hash) if seal else None
    newest = heads.latest(current.key)
    if seal is None or index is None or newest is None or index >= newest.tree_size:
        raise ApiError(404, f"record {record_id} is not sealed under a signed head yet")
    path = tree.inclusion_proof(index, newest.tree_size, SealedTree(head_tree(newest), *seal).hash_range)
    response = jsonify(
        {
            "site": current.key,
            "record_id": record_id,
            "leaf_index": index,
            "tree_size": newest.tree_size,
            "leaf_hash": record.record_hash,
            "proof": [value.hex() for value in path],
            "head": heads.as_json(newest),
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Register the ledger routes."""
    app.register_blueprint(bp)
