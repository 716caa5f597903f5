"""Fixtures for the declaration's browser tests: Chromium, the site's pages and the live service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.declaration import ROOT, PageServer, Service, start_service


@pytest.fixture(scope="session")
def pages() -> Iterator[PageServer]:
    """The site's own pages, on an origin other than the service's."""
    server = PageServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=5)


@pytest.fixture(scope="session")
def service(pages: PageServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The live service with the demo inventory, its origins set to the pages' origin."""
    running = start_service(ROOT / "cookies.yaml", pages.origin, tmp_path_factory.mktemp("service"))
    yield running
    running.stop()
