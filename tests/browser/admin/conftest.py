"""Browser tests of the dashboard: Chromium against the real service under gunicorn.

The service runs on a free port with a temporary SQLite log, the demo
inventory (its origins replaced by the test pages') and one dashboard user
created with ``consent admin create``. A small threaded server on another port
plays the site that embeds the banner, so CORS is real.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import serving
from tests.support.dashboard import PASSWORD, USERNAME, Dashboard, ShopPages
from tests.support.inventory import write_site
from tests.support.live import LiveService, migrate


@pytest.fixture(scope="session")
def viewport() -> dict[str, int]:
    """The dashboard's pages are taller than a shop's."""
    return {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def shop_pages() -> Iterator[ShopPages]:
    with serving(ShopPages()) as server:
        yield server


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory, shop_pages: ShopPages) -> Iterator[Dashboard]:
    """gunicorn serving the service, after the migrations and with one dashboard user."""
    folder = tmp_path_factory.mktemp("dashboard")
    database_url = f"sqlite:///{folder / 'consent.db'}"
    migrate(database_url)
    live = LiveService(database_url, workers=2, env={"CONSENT_RATELIMIT_ENABLED": "true"})
    shop_pages.service = live.base
    write_site(folder / "demo.yaml", origins=[shop_pages.origin, live.base])
    live.env["CONSENT_INVENTORY"] = str(folder / "demo.yaml")
    live.command("admin", "create", USERNAME, "--password-stdin", stdin=PASSWORD + "\n")
    with live:
        yield Dashboard(live.base, database_url)
