"""Browser tests: Chromium against the real service (gunicorn) and pages embedding it from another origin.

The service runs on one port with a temporary SQLite log and inventory; the
embedding pages are served by a small threaded server on another port, with
the strict Content-Security-Policy a careful site would send, so CORS and CSP
are real. ``www.shop.test`` resolves to 127.0.0.1 inside Chromium, so cookies
on a parent domain (``.shop.test``) can be tested too.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.browser import ADMIN_TOKEN, EmbeddingSite, Pages, Service, Shop, serving
from tests.support.inventory import site_document, write_document, write_site
from tests.support.live import LiveService, migrate

ROOT = Path(__file__).resolve().parents[2]


def _renamed_languages(node: Any) -> Any:
    """The same texts with en → de and nl → fr, for a second site in other languages."""
    if isinstance(node, dict):
        names = {"en": "de", "nl": "fr"}
        return {names.get(key, key): _renamed_languages(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_renamed_languages(item) for item in node]
    return node


def _inventory(folder: Path, origins: list[str]) -> Path:
    """The demo inventory (origins replaced) and a second site ``boxed``: box layout, de/fr, shared domain."""
    write_site(folder / "demo.yaml", origins=origins)
    boxed = _renamed_languages({key: value for key, value in site_document(origins=origins).items() if key != "texts"})
    boxed.update(site="boxed", languages=["de", "fr"], layout="box", cookie_domain=".shop.test", revision=3)
    boxed.update(consent_max_age_days=30, policy_url="https://www.shop.test/datenschutz")
    write_document(folder / "boxed.yaml", boxed)
    return folder


@pytest.fixture(scope="session")
def embedding_site() -> Iterator[EmbeddingSite]:
    with serving(EmbeddingSite()) as server:
        yield server


@pytest.fixture(scope="session")
def secure_site(embedding_site: EmbeddingSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddingSite]:
    """The same pages over https, with a throwaway self-signed certificate."""
    folder = tmp_path_factory.mktemp("tls")
    key, certificate = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate, key)
    with serving(EmbeddingSite(tls, plain=embedding_site)) as server:
        yield server


@pytest.fixture(scope="session")
def service(
    embedding_site: EmbeddingSite, secure_site: EmbeddingSite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """gunicorn serving the service on its own port, after the migrations."""
    folder = tmp_path_factory.mktemp("service")
    database = folder / "consent.db"
    migrate(f"sqlite:///{database}")
    live = LiveService(
        f"sqlite:///{database}",
        workers=2,
        env={"CONSENT_ADMIN_TOKENS": ADMIN_TOKEN, "CONSENT_RATELIMIT_ENABLED": "true"},
    )
    origins = [embedding_site.origin(), embedding_site.origin("www.shop.test"), secure_site.origin(), live.base]
    live.env["CONSENT_INVENTORY"] = str(_inventory(folder / "inventory", origins))
    with live:
        yield Service(live.base, database)


@pytest.fixture(scope="session")
def viewport() -> dict[str, int]:
    """The browser window of every test here; a folder's conftest may choose another."""
    return {"width": 1280, "height": 800}


@pytest.fixture
def context(browser: Browser, viewport: dict[str, int]) -> Iterator[BrowserContext]:
    """A fresh visitor: no cookies, no storage."""
    fresh = browser.new_context(viewport=viewport, locale="en-GB", accept_downloads=True)
    fresh.set_default_timeout(10_000)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def pages(embedding_site: EmbeddingSite, secure_site: EmbeddingSite, service: Service) -> Pages:
    return Pages(embedding_site, secure_site, service)


@pytest.fixture
def shop(page: Page, pages: Pages, service: Service) -> Shop:
    return Shop(page, pages, service)
