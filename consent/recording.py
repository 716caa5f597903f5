"""Recording a visitor's choice: validation, what the server adds, hashing and receipts."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import current_app
from itsdangerous import BadSignature, Serializer, URLSafeSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.signer import HMACAlgorithm
from marshmallow import Schema, ValidationError, fields, post_load, validate
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import DBAPIError

from consent import partitions, sealing
from consent.database import PreparedInsert, dialect_insert
from consent.errors import ApiError
from consent.inventory import Site
from consent.metrics import RECORDS_WRITTEN
from consent.models import ConsentEventKey, ConsentRecord, InventoryVersion, db, utcnow
from consent.texts import CATEGORIES

ACTIONS = ("accept_all", "reject_all", "custom", "withdraw")
OPTIONAL = CATEGORIES[1:]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# ";name=value" after a path segment (RFC 3986 3.3), up to the next "/".
PATH_PARAMETERS = re.compile(r";[^/]*")
# Fields covered by the record hash, in this order; the hash is the record's
# fingerprint in receipts and in the tamper-evident log.
HASHED_FIELDS = (
    "site", "event_id", "consent_id", "recorded_at", "action", *CATEGORIES, "revision",
    "inventory_hash", "language", "page_url", "ip", "user_agent", "gpc", "dnt",
)  # fmt: skip


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


class StrictBoolean(fields.Boolean):
    """A JSON true or false, nothing else: ``fields.Boolean`` takes 1 and 0, which equal True and False."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


def _implied(action: str, signal: bool) -> dict[str, bool]:
    """What ``action`` grants of each optional category; ``signal``: GPC or DNT was seen."""
    if action == "accept_all":
        return {category: not (signal and category == "advertising") for category in OPTIONAL}
    return dict.fromkeys(OPTIONAL, False)


class ConsentSchema(Schema):
    """The body of ``POST /api/v1/sites/<site>/consents``."""

    event_id = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9._-]{8,64}$", error="must be 8-64 of A-Z a-z 0-9 . _ -"),
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
        contradicting = [
            category
            for category in OPTIONAL
            if category in given
            and given[category] != implied[category]
            and not (action == "accept_all" and category == "advertising" and given[category])
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
    """The network part only: IPv4 /24, IPv6 /48 (IPv4-mapped IPv6 counts as IPv4).

    Cached: the same addresses come back request after request (and parsing one
    costs more than a third of recording a consent's validation).
    """
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def clean_page_url(url: str) -> str:
    """``url`` with only its scheme, host, port and path: no user, password, path parameters, query or fragment.

    Each of those can carry who the visitor is (``user:password@``,
    ``;jsessionid=…``, ``?email=``) and none of it is needed as proof.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    path = PATH_PARAMETERS.sub("", parts.path) if ";" in parts.path else parts.path
    return urlunsplit((parts.scheme, host, path, "", ""))


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``: the one timestamp format of the API and exports."""
    # isoformat is several times faster than strftime; the offset of an aware time is cut off.
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


# What json.dumps(content, separators=(",", ":"), ensure_ascii=False) writes, without a new encoder per call.
CANONICAL_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def record_hash(values: dict[str, Any]) -> str:
    """SHA-256 over the hashed fields as canonical JSON (timestamps in ``iso`` form)."""
    content = [iso(values[f]) if f == "recorded_at" else values[f] for f in HASHED_FIELDS]
    return hashlib.sha256(CANONICAL_JSON.encode(content).encode()).hexdigest()


class ReceiptSerializer(URLSafeSerializer):
    """itsdangerous' URL-safe serializer without its zlib attempt.

    A receipt is a UUID, a hex digest and a number: compressing it saves a few
    bytes and costs as much CPU as signing. Compressed receipts still load.
    """

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class OneShotHMAC(HMACAlgorithm):
    """HMAC-SHA1 as itsdangerous signs by default, computed by OpenSSL in one call.

    itsdangerous passes hashlib's constructor to ``hmac.new``, which then
    builds the MAC in Python; ``hmac.digest`` gives the same bytes.
    """

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha1")


@lru_cache(maxsize=8)
def _receipt_signer(key: str | bytes) -> URLSafeSerializer:
    return ReceiptSerializer(key, salt="consent-receipt", signer_kwargs={"algorithm": OneShotHMAC()})


def receipt_signer() -> URLSafeSerializer:
    """The one signer for consent receipts (its own salt, key from configuration), made once per key."""
    return _receipt_signer(current_app.config["SECRET_KEY"])


def make_receipt(site: str, consent_id: str, record_id: int, digest: str) -> str:
    """A receipt proving this browser holds ``consent_id`` and what record ``record_id`` said."""
    return receipt_signer().dumps([site, consent_id, record_id, digest])


def check_receipt(site: str, consent_id: str, receipt: str | None) -> list[Any]:
    """The receipt's payload if it was issued for ``consent_id`` on ``site``; else 403."""
    if not receipt:
        raise ApiError(403, "a receipt is required for this consent ID")
    try:
        payload = receipt_signer().loads(receipt)
    except BadSignature as error:
        raise ApiError(403, "the receipt is not valid") from error
    if not isinstance(payload, list) or len(payload) != 4 or payload[:2] != [site, consent_id]:
        raise ApiError(403, "the receipt was not issued for this consent ID")
    return payload


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


def response_body(site: str, consent_id: str, recorded_at: datetime, record_id: int, digest: str) -> dict[str, str]:
    """What the API answers for a recorded (or replayed) choice."""
    return {
        "consent_id": consent_id,
        "recorded_at": iso(recorded_at),
        "receipt": make_receipt(site, consent_id, record_id, digest),
    }


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


def record_consent(site: Site, data: dict[str, Any], ip: str | None, user_agent: str) -> tuple[dict[str, str], bool]:
    """Append one record; return the body and whether it is new (False: a replayed event_id)."""
    if data["consent_id"]:
        check_receipt(site.key, data["consent_id"], data["receipt"])
    now = utcnow()
    values: dict[str, Any] = {
        "site": site.key,
        "event_id": data["event_id"],
        "consent_id": data["consent_id"] or str(uuid.uuid4()),
        "recorded_at": now.replace(microsecond=now.microsecond // 1000 * 1000),
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
    }
    values["record_hash"] = record_hash(values)
    record_id = _append(values)
    if record_id is not None:
        RECORDS_WRITTEN.labels(site.key, data["action"]).inc()
        sealing.after_record(site.key)
        return response_body(
            site.key, values["consent_id"], values["recorded_at"], record_id, values["record_hash"]
        ), True
    # The event was recorded before (a retry, perhaps racing this one): answer as then.
    row = db.session.execute(
        select(
            ConsentRecord.id,
            ConsentRecord.consent_id,
            ConsentRecord.recorded_at,
            ConsentRecord.record_hash,
        ).where(ConsentRecord.site == site.key, ConsentRecord.event_id == data["event_id"])
    ).one_or_none()
    if row is None:  # only if the record was deleted by hand while its key stayed
        raise ApiError(422, "event_id already used", {"event_id": ["was recorded before and is gone"]})
    if data["consent_id"] and data["consent_id"] != row.consent_id:
        raise ApiError(422, "event_id already used", {"event_id": ["was recorded for another consent ID"]})
    return response_body(site.key, row.consent_id, row.recorded_at, row.id, row.record_hash), False
