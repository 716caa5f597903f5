"""The regions' browser tests: a service that trusts CloudFront's region headers, and sites that map regions.

``world`` maps the EU and GB to opt-in, California and Colorado to opt-out,
the rest of the US to a notice and Japan to nothing, with Consent Mode's
options set. ``world-r2`` and ``world-r3`` are the same site at later
revisions, sharing the visitor's consent cookie (the cookie belongs to the
page's host, not to a site): ``world-r2`` adds no purpose and keeps refusals
365 days, ``world-r3`` declares that it adds one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Route

from tests.support.browser import ADMIN_TOKEN, EmbeddingSite, Service
from tests.support.inventory import write_site
from tests.support.live import LiveService, migrate

REGIONS = {
    "EU": "opt-in",
    "GB": "opt-in",
    "US-CA": "opt-out",
    "US-CO": "opt-out",
    "US": "notice",
    "JP": "none",
}
CONSENT_MODE = {"wait_for_update": 500, "ads_data_redaction": True, "url_passthrough": True}
# What CloudFront sends for a visitor from each place.
FROM = {
    "DE": {"CloudFront-Viewer-Country": "DE"},
    "US-CA": {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "CA"},
    "US-NY": {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "NY"},
    "JP": {"CloudFront-Viewer-Country": "JP"},
}


def _inventory(folder: Path, origins: list[str]) -> Path:
    common: dict[str, Any] = {"origins": origins, "regions": REGIONS, "default_regime": "opt-in"}
    write_site(folder / "world.yaml", site="world", consent_mode=CONSENT_MODE, **common)
    write_site(folder / "world-r2.yaml", site="world-r2", revision=2, reask_after_refusal_days=365, **common)
    write_site(folder / "world-r3.yaml", site="world-r3", revision=3, purposes_revision=3, **common)
    return folder


@pytest.fixture(scope="session")
def service(
    embedding_site: EmbeddingSite, secure_site: EmbeddingSite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """gunicorn serving the region sites, trusting CloudFront's headers (and no other)."""
    folder = tmp_path_factory.mktemp("regions")
    database = folder / "consent.db"
    migrate(f"sqlite:///{database}")
    live = LiveService(
        f"sqlite:///{database}",
        workers=2,
        env={"CONSENT_ADMIN_TOKENS": ADMIN_TOKEN, "CONSENT_REGION_HEADER": "cloudfront"},
    )
    origins = [embedding_site.origin(), secure_site.origin(), live.base]
    live.env["CONSENT_INVENTORY"] = str(_inventory(folder / "inventory", origins))
    with live:
        yield Service(live.base, database)


@pytest.fixture
def visitor_from(context: BrowserContext, service: Service) -> Any:
    """Make this visitor's requests to the service carry the CDN's headers for a place, and ``Sec-GPC: 1`` if asked.

    The CDN's headers are added on the way to the service, as a CDN adds them:
    the page never set them, so they cost no CORS preflight. ``Sec-GPC`` goes on
    every request, as a browser with GPC on sends it (Chromium drops a ``Sec-``
    header added on the way).
    """

    def place(where: str | None, gpc: bool = False, **headers: str) -> None:
        extra = {**(FROM[where] if where else {}), **headers}

        def add(route: Route) -> None:
            route.continue_(headers={**route.request.headers, **extra})

        context.unroute(f"{service.url}/**")
        context.route(f"{service.url}/**", add)
        context.set_extra_http_headers({"Sec-GPC": "1"} if gpc else {})

    return place
