from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from consent.web.limits import SweptMemoryStorage

ORIGIN = {"Origin": "http://localhost:8000"}
URL = "/api/v1/sites/demo/consents"


def record() -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "action": "reject_all",
        "choices": {},
        "revision": 1,
        "page_url": "https://shop.example/",
    }


def test_consent_posts_are_limited_per_client_with_retry_after(make_app):
    client = make_app(RATELIMIT_CONSENT_PER_CLIENT="3 per minute").test_client()
    statuses = [client.post(URL, json=record(), headers=ORIGIN).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    limited = client.post(URL, json=record(), headers=ORIGIN)
    assert limited.json["error"]["code"] == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    # Another network is counted apart.
    other = client.post(URL, json=record(), headers=ORIGIN, environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert other.status_code == 201


def test_consent_posts_are_limited_per_site_across_clients(make_app):
    client = make_app(RATELIMIT_CONSENT_PER_SITE="2 per minute").test_client()
    addresses = ["192.0.2.1", "198.51.100.1", "203.0.113.1"]
    statuses = [
        client.post(URL, json=record(), headers=ORIGIN, environ_base={"REMOTE_ADDR": address}).status_code
        for address in addresses
    ]
    assert statuses == [201, 201, 429]


def test_reading_the_inventory_is_not_limited_by_consent_limits(make_app):
    client = make_app(RATELIMIT_CONSENT_PER_CLIENT="1 per minute").test_client()
    client.post(URL, json=record(), headers=ORIGIN)
    assert client.get("/api/v1/sites/demo/inventory").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_instances_share_one_limit_through_redis(make_app):
    url = "redis://127.0.0.1:6379/0"
    redis.Redis.from_url(url, socket_timeout=5).ping()  # fails, not skips, when Redis is missing
    config = {
        "RATELIMIT_STORAGE_URL": url,
        "RATELIMIT_KEY_PREFIX": f"consent-test-{uuid.uuid4().hex}",
        "RATELIMIT_CONSENT_PER_CLIENT": "4 per minute",
    }
    first, second = make_app(**config).test_client(), make_app(**config).test_client()
    statuses = [(first if i % 2 else second).post(URL, json=record(), headers=ORIGIN).status_code for i in range(6)]
    assert statuses == [201, 201, 201, 201, 429, 429]


def test_in_memory_counters_start_no_thread_and_still_expire():
    storage = SweptMemoryStorage("memory://")
    limiter = FixedWindowRateLimiter(storage)
    time.sleep(0.05)  # the storage's first timer, started when it is made, has run out
    threads = threading.active_count()
    per_second = parse("2 per second")
    assert [limiter.hit(per_second, "client") for _ in range(3)] == [True, True, False]
    for number in range(100):
        limiter.hit(per_second, f"other-{number}")
    assert threading.active_count() == threads
    time.sleep(1.1)
    assert limiter.hit(per_second, "client")  # a new window
    # Expired counters of clients that never came back are swept, not kept forever.
    assert len(storage.storage) == 1
