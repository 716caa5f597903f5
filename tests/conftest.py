"""Fixtures: every test that uses ``app`` runs on SQLite and on PostgreSQL.

Each test session migrates its own SQLite file and its own PostgreSQL schema
(so that parallel runs never collide); every test starts with empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from playwright.sync_api import Browser, Playwright, sync_playwright
from sqlalchemy import delete

from consent import create_app
from consent.store.models import db
from tests.support.service_config import ADMIN_TOKEN, app_config, migrate

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("CONSENT_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
DATABASES = os.environ.get("CONSENT_TEST_DATABASES", "sqlite,postgresql").split(",")
CHROMIUM = os.environ.get("CONSENT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP *.shop.test 127.0.0.1",
]  # fmt: skip
ORIGIN = "http://localhost:8000"


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of the given kind for this test session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'consent.db'}"
        migrate(url)
        yield url
        return
    schema = f"consent_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on this session's database with config overrides; tables are emptied afterwards."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        app = create_app(app_config(database_url, **overrides))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.engine.dispose()
    cleaner = create_app(app_config(database_url))
    with cleaner.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(delete(table))
        db.session.commit()
        db.engine.dispose()


@pytest.fixture
def proof_app(make_app: Callable[..., Flask]) -> Flask:
    """An app that seals only when asked (``consent seal``), with no grace period to wait for.

    Its public address is the test client's, so that ``consent export`` names the
    same absolute addresses in ISO 27560 records as the export route does.
    """
    return make_app(SEAL_INTERVAL=0, SEAL_GRACE=0, PUBLIC_URL="http://localhost")


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """The run's one Playwright (its sync API allows only one at a time in a process)."""
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, shared by every browser test; a missing browser fails the run.

    ``*.shop.test`` resolves to 127.0.0.1 so that cookies on a parent domain can be tested.
    """
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; install Debian's chromium or set CONSENT_CHROMIUM")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()
