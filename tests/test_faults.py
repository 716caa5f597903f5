"""Faults survived under load: the database going away, a worker killed, SQLite under many clients.

What a site owner relies on: a choice the service acknowledged is in the log
afterwards, whatever failed around it; an outage is answered with 503 and a
Retry-After (so the banner keeps the record and retries), never with a 500.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import LiveService, migrate, missing_service, postgresql_selected, stored_event_ids
from tests.support.post_load import Answer, PostLoad
from tests.support.private_postgres import PrivateCluster, server_bindir

CLIENTS = 8


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster for this module, removed at the end whatever happened."""
    if not postgresql_selected():
        missing_service("PostgreSQL is not among CONSENT_TEST_DATABASES")
    try:
        server_bindir()
    except FileNotFoundError as error:
        missing_service(str(error))
    private = PrivateCluster()
    try:
        private.start()
        yield private
    finally:
        private.remove()


@pytest.fixture
def private_database(cluster: PrivateCluster) -> str:
    url = cluster.create_database(f"consent_{uuid.uuid4().hex[:12]}")
    migrate(url)
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'consent.db'}"
        migrate(url)
        return url
    return str(request.getfixturevalue("private_database"))


def assert_acknowledged_all_stored(answers: list[Answer], database_url: str) -> Counter[str]:
    """Every acknowledged event_id is in the log exactly once, and the log holds nothing that was not sent."""
    stored = stored_event_ids(database_url)
    acknowledged = {a.event_id for a in answers if a.acknowledged}
    lost = acknowledged - set(stored)
    assert not lost, f"{len(lost)} acknowledged records are missing, e.g. {sorted(lost)[:3]}"
    assert set(stored) <= {a.event_id for a in answers}
    assert max(stored.values(), default=1) == 1
    return stored


def report(name: str, answers: list[Answer], stored: Counter[str], **extra: object) -> None:
    statuses = Counter(a.status for a in answers)
    acknowledged = sum(a.acknowledged for a in answers)
    figures = {"sent": len(answers), "acknowledged": acknowledged, "found": len(stored), "statuses": dict(statuses)}
    print(f"\n{name}: {json.dumps({**figures, **extra})}")


def test_database_stopped_and_restarted_under_load(cluster: PrivateCluster, private_database: str) -> None:
    with LiveService(private_database, workers=4) as service:
        with PostLoad([service.base], clients=CLIENTS, max_seconds=40) as load:
            time.sleep(2)
            cluster.stop("immediate")
            down_at = time.monotonic()
            time.sleep(3)
            restart_at = time.monotonic()
            cluster.start()
            back_at = time.monotonic()
            deadline = back_at + 10
            while time.monotonic() < deadline and not any(
                a.acknowledged and a.sent_at > restart_at for a in load.snapshot()
            ):
                time.sleep(0.05)
            time.sleep(2)
        stderr = service.stderr()
    answers = load.answers
    stored = assert_acknowledged_all_stored(answers, private_database)
    statuses = Counter(a.status for a in answers)
    during_outage = [a for a in answers if a.sent_at >= down_at and a.answered_at <= restart_at]
    unavailable = [a for a in answers if a.status == 503]
    # Back means accepting connections again, after crash recovery; a 2xx may even come
    # before pg_ctl notices, hence the floor at zero.
    first_after = min((a.answered_at for a in answers if a.acknowledged and a.sent_at > restart_at), default=None)
    recovery = None if first_after is None else round(max(0.0, first_after - back_at), 3)
    report(
        "database restart",
        answers,
        stored,
        outage_s=round(restart_at - down_at, 2),
        restart_s=round(back_at - restart_at, 2),
        recovery_s=recovery,
    )

    assert statuses[500] == 0 and set(statuses) <= {201, 503}, statuses
    assert during_outage and {a.status for a in during_outage} == {503}
    assert all(a.retry_after and json.loads(a.body)["error"]["code"] == "unavailable" for a in unavailable)
    assert recovery is not None and recovery <= 5.0, f"no 2xx within 5 s of the database's return: {recovery}"
    assert sum(a.acknowledged for a in answers if a.sent_at < down_at) > 0
    assert "Traceback" not in stderr


def test_worker_killed_under_load_loses_no_acknowledged_record(any_database: str) -> None:
    with LiveService(any_database, workers=4) as service:
        with PostLoad([service.base], clients=CLIENTS, max_seconds=40) as load:
            time.sleep(1.5)
            victim = min(service.worker_pids())
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            service.wait_for_workers(timeout=20, exclude={victim})
            replaced_at = time.monotonic()
            time.sleep(1.5)
    answers = load.answers
    stored = assert_acknowledged_all_stored(answers, any_database)
    failures = [a for a in answers if not a.acknowledged]
    report(
        f"worker SIGKILL ({any_database.split(':')[0]})",
        answers,
        stored,
        replaced_after_s=round(replaced_at - killed_at, 2),
    )

    # A sync worker serves one request at a time: only the one it was serving may go unanswered.
    assert len(failures) <= 1 and all(a.status == 0 for a in failures), failures
    assert any(a.acknowledged and a.sent_at > replaced_at for a in answers)


def test_sqlite_four_workers_sixty_four_clients_never_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'consent.db'}"
    migrate(url)
    with LiveService(url, workers=4) as service:
        with PostLoad([service.base], clients=64, max_seconds=60, posts_per_client=10) as load:
            load.wait()
        stderr = service.stderr()
    answers = load.answers
    stored = assert_acknowledged_all_stored(answers, url)
    report("sqlite 64 clients", answers, stored)

    assert "database is locked" not in stderr
    assert not [a for a in answers if "database is locked" in a.body]
    assert Counter(a.status for a in answers) == {201: 64 * 10}
    assert len(stored) == 64 * 10
