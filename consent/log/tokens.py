"""The visitor's access token (``receipt``): an HMAC over the site and consent ID, keyed by ``CONSENT_SECRET_KEY``.

It is a secret the banner keeps in the consent cookie; it lets that browser add
to and read its own history. It is not the proof: the proof is the record's
statement signed with the ledger's Ed25519 key (``consent.ledger.signing``),
which anyone can check and which grants nothing.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, Serializer, URLSafeSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.signer import HMACAlgorithm

from consent.web.errors import ApiError


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


def make_receipt(site: str, consent_id: str) -> str:
    """The visitor's access token: it lets the browser that holds it add to and read ``consent_id``'s history."""
    return receipt_signer().dumps([site, consent_id])


def check_receipt(site: str, consent_id: str, receipt: str | None) -> None:
    """403 unless ``receipt`` is an access token issued for ``consent_id`` on ``site``.

    Tokens issued before the proof was split off carried four values; their first two still count.
    """
    if not receipt:
        raise ApiError(403, "a receipt is required for this consent ID")
    try:
        payload = receipt_signer().loads(receipt)
    except BadSignature as error:
        raise ApiError(403, "the receipt is not valid") from error
    if not isinstance(payload, list) or len(payload) not in (2, 4) or payload[:2] != [site, consent_id]:
        raise ApiError(403, "the receipt was not issued for this consent ID")
