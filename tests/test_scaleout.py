"""Scaling out: two stateless instances on one PostgreSQL behave as one service.

Any instance may take any request: counts stay exact, a retried event_id is
stored once whichever instances it reached, and a receipt from one instance
is honoured by the other.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.support.live import ROOT, LiveService, migrate, missing_service, postgresql_selected, stored_event_ids
from tests.support.post_load import ORIGIN, Answer, PostLoad, post_consent

POSTGRES = os.environ.get("CONSENT_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    """A fresh schema on the shared PostgreSQL server, dropped afterwards."""
    if not postgresql_selected():
        missing_service("PostgreSQL is not among CONSENT_TEST_DATABASES")
    schema = f"consent_scale_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as error:
        missing_service(f"PostgreSQL at {POSTGRES} is not reachable: {error}")
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def two_instances(shared_database: str) -> Iterator[tuple[LiveService, LiveService]]:
    with LiveService(shared_database, workers=2) as first, LiveService(shared_database, workers=2) as second:
        yield first, second


def history(base: str, consent_id: str, receipt: str) -> int:
    """The status of a visitor's history lookup with their receipt."""
    request = urllib.request.Request(
        f"{base}/api/v1/sites/demo/consents/{consent_id}",
        headers={"X-Consent-Receipt": receipt, "Origin": ORIGIN},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return int(response.status)


def test_concurrent_posts_to_two_instances_are_counted_exactly(
    shared_database: str, two_instances: tuple[LiveService, LiveService]
) -> None:
    first, second = two_instances
    before = stored_event_ids(shared_database)
    with PostLoad([first.base, second.base], clients=16, max_seconds=60, posts_per_client=25) as load:
        load.wait()
    answers = load.answers
    stored = stored_event_ids(shared_database) - before
    per_instance = {base: sum(a.base == base for a in answers) for base in (first.base, second.base)}
    print(f"\nscale-out: sent {len(answers)}, rows {sum(stored.values())}, per instance {list(per_instance.values())}")

    assert {a.status for a in answers} == {201}
    assert min(per_instance.values()) >= 150
    assert sum(stored.values()) == len(stored) == len(answers) == 400
    assert set(stored) == {a.event_id for a in answers}
    # Writes and seals from two instances keep the log verifiable: seal what is
    # left, then the whole log must verify with every record sealed.
    env = first.env
    for command in (["seal", "--site", "demo"], ["verify", "--site", "demo"]):
        done = subprocess.run(
            [sys.executable, "-m", "consent", *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
    total = sum(before.values()) + 400
    assert f"demo: intact; {total} records checked, {total} sealed" in done.stdout, done.stdout


def test_same_event_ids_to_both_instances_are_stored_once(
    shared_database: str, two_instances: tuple[LiveService, LiveService]
) -> None:
    first, second = two_instances
    event_ids = [str(uuid.uuid4()) for _ in range(120)]
    together = {event_id: threading.Barrier(2, timeout=20) for event_id in event_ids}

    def post_together(job: tuple[str, str]) -> Answer:
        event_id, base = job
        together[event_id].wait()
        return post_consent(base, event_id)

    # Which instance's request goes first is left to chance, pair by pair.
    jobs = [(event_id, base) for event_id in event_ids for base in random.sample([first.base, second.base], 2)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(post_together, jobs))
    by_event: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_event[answer.event_id].append(answer)
    stored = stored_event_ids(shared_database)
    created_on = Counter(a.base for a in answers if a.status == 201)
    overlapping = sum(max(a.sent_at for a in pair) < min(a.answered_at for a in pair) for pair in by_event.values())
    rows = sum(stored[event_id] for event_id in event_ids)
    print(
        f"\nscale-out replay: event_ids {len(event_ids)}, posts {len(answers)}, rows {rows}, "
        f"pairs in flight together {overlapping}, created per instance {list(created_on.values())}"
    )

    assert all(sorted(a.status for a in pair) == [200, 201] for pair in by_event.values()), [
        [a.status for a in pair] for pair in by_event.values()
    ]
    assert all(json.loads(pair[0].body) == json.loads(pair[1].body) for pair in by_event.values())
    assert [stored[event_id] for event_id in event_ids] == [1] * len(event_ids)
    assert overlapping >= len(event_ids) // 2, "the two posts of an event_id were not concurrent"
    # A receipt one instance signed is honoured by the other.
    answer = next(a for a in answers if a.status == 201)
    other = second.base if answer.base == first.base else first.base
    body = json.loads(answer.body)
    assert history(other, body["consent_id"], body["receipt"]) == 200
