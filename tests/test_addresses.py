"""Client addresses: ports and brackets parsed, embedded IPv4 cut like IPv4, unparsable ones never pooled."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from consent.log.recording import truncate_ip
from consent.store.models import ConsentRecord, db
from consent.web.addresses import parse_address

URL = "/api/v1/sites/demo/consents"
ORIGIN = {"Origin": "http://localhost:8000"}


def record() -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "action": "reject_all",
        "choices": {"functional": False, "analytics": False, "advertising": False},
        "revision": 1,
        "page_url": "https://shop.example/",
    }


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("198.51.100.77", "198.51.100.0"),
        ("198.51.100.77:5555", "198.51.100.0"),
        ("[2001:db8:85a3:1::1]:443", "2001:db8:85a3::"),
        ("[2001:db8::1]", "2001:db8::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:198.51.100.77", "198.51.100.0"),
        # 6to4: 2002:c633:644d::/48 is 198.51.100.77 itself; cut to its /24, written as IPv4.
        ("2002:c633:644d::1", "198.51.100.0"),
        ("2002:c633:644d:1234:5678::9", "198.51.100.0"),
        # Teredo: the client is the last 32 bits, inverted (here 192.0.2.45).
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.0"),
        # NAT64 well-known prefix: the last 32 bits.
        ("64:ff9b::c633:644d", "198.51.100.0"),
        ("64:ff9b::198.51.100.77", "198.51.100.0"),
        ("2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
        ("unknown", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_truncate_ip(address, kept):
    assert truncate_ip(address) == kept


def test_parse_address_takes_ports_and_brackets():
    assert str(parse_address(" 198.51.100.77:5555 ")) == "198.51.100.77"
    assert str(parse_address("[2001:db8::1]:443")) == "2001:db8::1"
    assert parse_address("[2001:db8::1") is None
    assert parse_address("198.51.100.77:") is None


@pytest.mark.parametrize(
    ("forwarded", "stored"),
    [
        ("198.51.100.77:5555", "198.51.100.0"),
        ("[2001:db8:85a3::1]:443", "2001:db8:85a3::"),
        ("2002:c633:644d::1", "198.51.100.0"),
    ],
)
def test_forwarded_values_behind_a_trusted_proxy_are_stored_truncated(make_app, forwarded, stored):
    app = make_app(TRUSTED_PROXIES=1)
    client = app.test_client()
    response = client.post(URL, json=record(), headers={**ORIGIN, "X-Forwarded-For": forwarded})
    assert response.status_code == 201
    with app.app_context():
        assert db.session.scalars(select(ConsentRecord.ip)).all() == [stored]


def test_forwarded_values_with_ports_share_the_bucket_of_their_network(make_app):
    client = make_app(TRUSTED_PROXIES=1, RATELIMIT_CONSENT_PER_CLIENT="2 per minute").test_client()
    forwarded = ["198.51.100.77:5555", "198.51.100.78:1234", "198.51.100.77"]
    statuses = [
        client.post(URL, json=record(), headers={**ORIGIN, "X-Forwarded-For": value}).status_code for value in forwarded
    ]
    assert statuses == [201, 201, 429]
    # Another network is counted apart.
    other = client.post(URL, json=record(), headers={**ORIGIN, "X-Forwarded-For": "[2001:db8::1]:443"})
    assert other.status_code == 201


def test_unparsable_forwarded_values_never_share_a_bucket(make_app):
    client = make_app(TRUSTED_PROXIES=1, RATELIMIT_CONSENT_PER_CLIENT="1 per minute").test_client()
    for forwarded in ("unknown", "unknown", "_hidden", "not an address", "unknown"):
        response = client.post(URL, json=record(), headers={**ORIGIN, "X-Forwarded-For": forwarded})
        assert response.status_code == 201, forwarded
    # A parsable client is still limited as before.
    statuses = [
        client.post(URL, json=record(), headers={**ORIGIN, "X-Forwarded-For": "203.0.113.9"}).status_code
        for _ in range(2)
    ]
    assert statuses == [201, 429]
