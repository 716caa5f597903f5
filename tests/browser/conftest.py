"""Browser tests: Chromium against the real service (gunicorn) and pages embedding it from another origin.

The service runs on one port with a temporary SQLite log and inventory; the
embedding pages are served by a small threaded server on another port, with
the strict Content-Security-Policy a careful site would send, so CORS and CSP
are real. ``www.shop.test`` resolves to 127.0.0.1 inside Chromium, so cookies
on a parent domain (``.shop.test``) can be tested too.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from ruamel.yaml import YAML

from tests.browser.visitor import ADMIN_TOKEN, EmbeddingSite, Pages, Service, Shop

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    folder.mkdir()
    yaml = YAML(typ="safe")
    demo = yaml.load((ROOT / "cookies.yaml").read_text(encoding="utf-8"))
    demo["origins"] = origins
    with (folder / "demo.yaml").open("w", encoding="utf-8") as file:
        yaml.dump(demo, file)
    boxed = _renamed_languages({key: value for key, value in demo.items() if key != "texts"})
    boxed.update(site="boxed", languages=["de", "fr"], layout="box", cookie_domain=".shop.test", revision=3)
    boxed.update(consent_max_age_days=30, policy_url="https://www.shop.test/datenschutz")
    with (folder / "boxed.yaml").open("w", encoding="utf-8") as file:
        yaml.dump(boxed, file)
    return folder


@pytest.fixture(scope="session")
def embedding_site() -> Iterator[EmbeddingSite]:
    server = EmbeddingSite()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


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
    server = EmbeddingSite(tls, plain=embedding_site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def service(
    embedding_site: EmbeddingSite, secure_site: EmbeddingSite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """gunicorn serving the service on its own port, after the migrations."""
    folder = tmp_path_factory.mktemp("service")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    origins = [embedding_site.origin(), embedding_site.origin("www.shop.test"), secure_site.origin(), url]
    database = folder / "consent.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSENT_BIND": f"127.0.0.1:{port}",
        "CONSENT_WORKERS": "2",
        "CONSENT_DATABASE_URL": f"sqlite:///{database}",
        "CONSENT_SECRET_KEY": "browser-test-secret",
        "CONSENT_ADMIN_TOKENS": ADMIN_TOKEN,
        "CONSENT_INVENTORY": str(_inventory(folder / "inventory", origins)),
    }
    migrate = [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    log = (folder / "gunicorn.log").open("w")
    command = [sys.executable, "-m", "gunicorn", "wsgi:app"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the service did not start:\n" + (folder / "gunicorn.log").read_text()) from None
                time.sleep(0.1)
        yield Service(url, database)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
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
