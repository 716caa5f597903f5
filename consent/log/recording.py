"""Recording a visitor's choice: validation, what the server adds, hashing, the access token and the proof."""

from __future__ import annotations

import re
import uuid
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import current_app
from marshmallow import Schema, ValidationError, fields, post_load, validate
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import DBAPIError

from consent.inventory.sites import Site, StrictBoolean
from consent.inventory.texts import CATEGORIES
from consent.ledger import heads, sealing
from consent.ledger.canonical import record_hash
from consent.ledger.keys import private_key
from consent.ledger.signing import RECORD, sign
from consent.log import partitions
from consent.log.tokens import check_receipt, make_receipt
from consent.store.database import PreparedInsert, dialect_insert
from consent.store.models import ConsentEventKey, ConsentRecord, InventoryVersion, db
from consent.timestamps import iso, to_ms, utcnow
from consent.web.errors import ApiError
from consent.web.metrics import RECORDS_WRITTEN

ACTIONS = ("accept_all", "reject_all", "custom", "withdraw", "opt_out")
# What a refusal is, for stats and the banner's refusal memory: an opt-out refuses advertising.
REFUSALS = ("reject_all", "withdraw", "opt_out")
OPTIONAL = CATEGORIES[1:]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# The banner's event ids: a UUID in its canonical text, either case (stored in lower case).
EVENT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# ";name=value" after a path segment (RFC 3986 3.3), up to the next "/".
PATH_PARAMETERS = re.compile(r";[^/]*")


# What no text field may hold: C0 and C1 controls (NUL, CR, LF, ...) and DEL, which
# PostgreSQL refuses (NUL) or which forge lines in logs and exports, and lone
# surrogates, which cannot be encoded as UTF-8 at all (hashing, receipts).
UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
TEXT_FIELDS = ("event_id", "consent_id", "receipt", "action", "language", "page_url")
# revision is an INTEGER column: what both SQLite and PostgreSQL store in it.
MAX_REVISION = 2**31 - 1


def _http_url(value: str) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise ValidationError(f"is not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc.rpartition("@")[2]:
        raise ValidationError("must be an absolute http(s) URL")


class Choices(fields.Field):
    """``choices``: true or false per category (``necessary`` only true); the action decides the rest.

    A field of its own rather than a nested schema or a typed ``Dict``, which
    cost a third of the whole request's validation for four booleans.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, bool]:
        if not isinstance(value, dict):
            raise ValidationError("must be an object of category: true or false")
        errors = {}
        for category, granted in value.items():
            if category not in CATEGORIES:
                errors[str(category)] = [f"not a category (one of {', '.join(CATEGORIES)})"]
            elif granted is not True and granted is not False:
                errors[category] = ["must be true or false"]
            elif category == "necessary" and granted is False:
                errors[category] = ["is always granted and cannot be refused"]
        if errors:
            raise ValidationError(errors)
        return value


def _implied(action: str, signal: bool) -> dict[str, bool]:
    """What ``action`` grants of each optional category; ``signal``: GPC or DNT was seen.

    An opt-out (of sale and sharing) refuses advertising and leaves the rest
    running, as the opt-out regime has them before any choice.
    """
    if action == "accept_all":
        return {category: not (signal and category == "advertising") for category in OPTIONAL}
    if action == "opt_out":
        return {category: category != "advertising" for category in OPTIONAL}
    return dict.fromkeys(OPTIONAL, False)


class ConsentSchema(Schema):
    """The body of ``POST /api/v1/sites/<site>/consents``."""

    event_id = fields.String(
        required=True, validate=validate.Regexp(EVENT_ID, error="must be a UUID (8-4-4-4-12 hexadecimal digits)")
    )
    consent_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(UUID, error="must be a consent ID (a UUID)"),
    )
    receipt = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1024))
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    choices = Choices(
        required=True,
        metadata={
            "type": "object",
            "properties": {
                category: {"type": "boolean", **({"const": True} if category == "necessary" else {})}
                for category in CATEGORIES
            },
            "additionalProperties": False,
        },
    )
    revision = fields.Integer(required=True, strict=True, validate=validate.Range(1, MAX_REVISION))
    language = fields.String(load_default=None, validate=validate.Length(1, 16))
    page_url = fields.String(required=True, validate=[validate.Length(max=2048), _http_url])
    gpc = StrictBoolean(load_default=False)
    dnt = StrictBoolean(load_default=False)

    @post_load
    def _understood(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # One hook for what spans fields (marshmallow's hooks cost more than their bodies).
        # It runs only if every field is valid; a body with a field error is refused anyway.
        unsafe = {
            name: ["must not contain control characters or lone surrogates"]
            for name in TEXT_FIELDS
            if data.get(name) and UNSAFE_TEXT.search(data[name])
        }
        if unsafe:
            raise ValidationError(unsafe)
        if data["receipt"] and not data["consent_id"]:
            raise ValidationError("a receipt comes with its consent_id", "consent_id")
        action, given = data["action"], data["choices"]
        if action == "custom":
            return data
        implied = _implied(action, data["gpc"] or data["dnt"])
        # With GPC or DNT, accept_all leaves advertising refused, unless the
        # visitor's own advertising switch granted it.
        # An opt-out decides advertising only: functional and analytics may be sent either way.
        contradicting = [
            category
            for category in OPTIONAL
            if category in given
            and given[category] != implied[category]
            and not (action == "accept_all" and category == "advertising" and given[category])
            and not (action == "opt_out" and category != "advertising")
        ]
        if contradicting:
            meaning = ", ".join(f"{c}: {str(implied[c]).lower()}" for c in contradicting)
            raise ValidationError(f"{action} means {meaning}; send action custom for another choice", "choices")
        # What is stored is the action's meaning: a category left out takes it.
        data["choices"] = {**implied, **given}
        return data


CONSENT_SCHEMA = ConsentSchema()


@lru_cache(maxsize=4096)
def truncate_ip(address: str | None) -> str:
    """The network part only: IPv4 /24, IPv6 /48; "" for a value that is no address.

    An IPv6 address carrying an IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64)
    is kept as that IPv4 address's /24, written as IPv4. A port
    (``198.51.100.77:5555``, ``[2001:db8::1]:443``) is dropped first.
    Cached: the same addresses come back request after request (and parsing one
    costs more than a third of recording a consent's validation).
    """
    # The parsing is shared with the rate limits (consent.web.limits), which imports this module.
    from consent.web.addresses import network_part, parse_address

    ip = parse_address(address)
    return "" if ip is None else network_part(ip)


def clean_page_url(url: str) -> str:
    """``url`` with only its scheme, host, port and path: no user, password, path parameters, query or fragment.

    Each of those can carry who the visitor is (``user:password@``,
    ``;jsessionid=…``, ``?email=``) and none of it is needed as proof.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    path = PATH_PARAMETERS.sub("", parts.path) if ";" in parts.path else parts.path
    return urlunsplit((parts.scheme, host, path, "", ""))


def _shown_hash(site: Site, revision: int) -> str:
    """The inventory hash a visitor saw: the current one, or a stored one for an older revision."""
    if revision == site.revision:
        return site.hash
    stored = db.session.execute(
        select(InventoryVersion.hash)
        .where(InventoryVersion.site == site.key, InventoryVersion.revision == revision)
        .order_by(InventoryVersion.first_served_at.desc())
        .limit(1)
    ).scalar()
    if stored is None:
        raise ApiError(422, "unknown revision", {"revision": [f"revision {revision} was never served"]})
    return str(stored)


def record_proof(site: str, record_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """The shareable, signed statement of one record, with the newest signed tree head: it grants nothing."""
    statement = {
        "type": RECORD,
        "site": site,
        "consent_id": values["consent_id"],
        "record_id": record_id,
        "record_hash": values["record_hash"],
        "recorded_at": iso(values["recorded_at"]),
        "action": values["action"],
        "choices": {category: bool(values[category]) for category in CATEGORIES},
    }
    return {"record": sign(private_key(), statement), "head": heads.recent(site)}


def response_body(site: str, record_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """What the API answers for a recorded (or replayed) choice: access token and proof."""
    return {
        "consent_id": values["consent_id"],
        "recorded_at": iso(values["recorded_at"]),
        "receipt": make_receipt(site, values["consent_id"]),
        "proof": record_proof(site, record_id, values),
    }


# What a replay must repeat: the fields the visitor sent (consent_id apart, and as the server stored them).
REPLAYED = ("action", *CATEGORIES, "revision", "language", "page_url", "gpc", "dnt")


INSERT = "consent.insert"


def _prepared_insert(keys: list[str]) -> PreparedInsert:
    """The idempotent INSERT for this app's database, compiled once; values travel as parameters."""
    prepared: PreparedInsert | None = current_app.extensions.get(INSERT)
    if prepared is None or prepared.engine is not db.engine:
        prepared = current_app.extensions[INSERT] = PreparedInsert(_build_insert(), db.engine, keys)
    return prepared


def _build_insert() -> Any:
    table = ConsentRecord.__table__
    if not partitions.log_is_partitioned():
        # The unique (site, event_id) refuses a second record of one event.
        return dialect_insert(table).on_conflict_do_nothing(index_elements=["site", "event_id"]).returning(table.c.id)
    # A partitioned log has no such constraint: claim the key first, in the same
    # statement, and insert the record only if the claim succeeded.
    keys = ConsentEventKey.__table__
    claimed = (
        dialect_insert(keys)
        .values(
            site=bindparam("site", type_=keys.c.site.type),
            event_id=bindparam("event_id", type_=keys.c.event_id.type),
            recorded_at=bindparam("recorded_at", type_=keys.c.recorded_at.type),
        )
        .on_conflict_do_nothing()
        .returning(keys.c.site)
        .cte("claimed")
    )
    columns = [column for column in table.c if column.name != "id"]
    row = select(*(bindparam(column.name, type_=column.type) for column in columns)).select_from(claimed)
    return insert(table).from_select(columns, row).returning(table.c.id)


def _append(values: dict[str, Any]) -> int | None:
    """Insert and commit one record: its id, or None if its event_id was recorded before.

    A connection the database dropped (a restart) is found out here rather
    than pinged before every use; the insert then runs once more on a fresh
    connection, which is safe because it is idempotent.
    """
    insert_record = _prepared_insert(list(values))
    try:
        return insert_record.first_column(values)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    return _prepared_insert(list(values)).first_column(values)


def record_consent(
    site: Site,
    data: dict[str, Any],
    ip: str | None,
    user_agent: str,
    region: str | None = None,
    sec_gpc: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Append one record; return the body and whether it is new (False: a replayed event_id).

    ``region`` and ``sec_gpc`` are what the server found in the request
    (consent.web.regions); the regime is the site's for that region.
    """
    if data["consent_id"]:
        check_receipt(site.key, data["consent_id"], data["receipt"])
    values: dict[str, Any] = {
        "site": site.key,
        "event_id": data["event_id"].lower(),
        "consent_id": data["consent_id"] or str(uuid.uuid4()),
        "recorded_at": to_ms(utcnow()),
        "action": data["action"],
        "necessary": True,
        **{category: bool(data["choices"].get(category, False)) for category in OPTIONAL},
        "revision": data["revision"],
        "inventory_hash": _shown_hash(site, data["revision"]),
        "language": site.pick_language(data["language"]),
        "page_url": clean_page_url(data["page_url"]),
        "ip": truncate_ip(ip),
        "user_agent": user_agent[:512],
        "gpc": data["gpc"],
        "dnt": data["dnt"],
        "regime": site.policy.regime_for(region),
        "region": region,
        "sec_gpc": sec_gpc,
    }
    values["record_hash"] = record_hash(values)
    record_id = _append(values)
    if record_id is not None:
        RECORDS_WRITTEN.labels(site.key, data["action"]).inc()
        sealing.after_record(site.key)
        return response_body(site.key, record_id, values), True
    return response_body(site.key, *_replayed(site.key, data, values)), False


def _replayed(site: str, data: dict[str, Any], values: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The stored record of a replayed event_id, if this request is the one that recorded it; else 409.

    The answer holds the visitor's access token, so only the same request gets
    it: the same choice, and the same consent ID with its token (already
    checked), or none when the stored record was the first of its consent ID.
    Anything else learns only that the event_id is taken.
    """
    table = ConsentRecord.__table__
    row = db.session.execute(
        select(table).where(table.c.site == site, table.c.event_id == values["event_id"])
    ).one_or_none()
    conflict = ApiError(409, "event_id was already used for another request", {"event_id": ["already used"]})
    if row is None:  # only if the record was deleted by hand while its key stayed
        raise conflict
    stored = row._asdict()
    if any(stored[name] != values[name] for name in REPLAYED):
        raise conflict
    if data["consent_id"] is not None:
        if data["consent_id"] != stored["consent_id"]:
            raise conflict
    else:
        earlier = db.session.scalar(
            select(ConsentRecord.id)
            .where(ConsentRecord.site == site, ConsentRecord.consent_id == stored["consent_id"])
            .where(ConsentRecord.id < stored["id"])
            .limit(1)
        )
        if earlier is not None:  # the first request came with this consent ID and its token
            raise conflict
    return stored["id"], stored
