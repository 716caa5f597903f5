"""Browser tests of the dashboard: Chromium against the real service under gunicorn.

Chromium comes from the run's shared ``browser`` fixture. The service runs
on a free port with a temporary SQLite log, the demo inventory (its origins
replaced by the test pages') and one dashboard user created with ``consent
admin create``. A small threaded server on another port plays the site that
embeds the banner, so CORS is real.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
USERNAME = "dpo"
PASSWORD = "a long dashboard password"


class ShopPages(ThreadingHTTPServer):
    """Pages of a site that embeds the banner: ``/<anything>`` sets the cookies named in ``?set=`` first."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ShopPage)
        self.service = ""

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ShopPage(BaseHTTPRequestHandler):
    server: ShopPages

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        names = parse_qs(urlsplit(self.path).query).get("set", [""])[0].split(",")
        setting = "".join(f'document.cookie = "{name}=1; path=/";' for name in names if name.isidentifier())
        body = (
            f"<!doctype html><html lang=en><head><title>Shop</title><script>{setting}</script>"
            f'<script src="{self.server.service}/s/demo/banner.js" async></script></head>'
            "<body><h1>Shop</h1></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def shop_pages() -> Iterator[ShopPages]:
    server = ShopPages()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _inventory(folder: Path, origins: list[str]) -> Path:
    """The demo inventory with the test pages' origins."""
    yaml = YAML(typ="safe")
    demo = yaml.load((ROOT / "cookies.yaml").read_text(encoding="utf-8"))
    demo["origins"] = origins
    path = folder / "demo.yaml"
    with path.open("w", encoding="utf-8") as file:
        yaml.dump(demo, file)
    return path


@dataclass(frozen=True)
class Dashboard:
    """The running service: its address and the URL of its SQLite log."""

    url: str
    database_url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start:\n" + log.read_text()) from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory, shop_pages: ShopPages) -> Iterator[Dashboard]:
    """gunicorn serving the service, after the migrations and with one dashboard user."""
    folder = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    shop_pages.service = url
    database_url = f"sqlite:///{folder / 'consent.db'}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSENT_BIND": f"127.0.0.1:{port}",
        "CONSENT_WORKERS": "2",
        "CONSENT_DATABASE_URL": database_url,
        "CONSENT_SECRET_KEY": "browser-test-secret",
        "CONSENT_ADMIN_TOKENS": "browser-admin-token",
        "CONSENT_INVENTORY": str(_inventory(folder, [shop_pages.origin, url])),
        "CONSENT_ACCESS_LOG": "",
    }
    consent = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*consent, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    create = [*consent, "admin", "create", USERNAME, "--password-stdin"]
    subprocess.run(
        create, cwd=ROOT, env=env, input=PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=60
    )
    log_path = folder / "gunicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            _wait_until_up(url, process, log_path)
            yield Dashboard(url, database_url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    fresh.set_default_timeout(10_000)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def log_in(page: Page, dashboard: Dashboard) -> None:
    """Open the dashboard, get sent to the login form, log in and land on the list of sites."""
    page.goto(f"{dashboard.url}/admin")
    expect(page).to_have_url(f"{dashboard.url}/admin/login?next=/admin")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Sites")).to_be_visible()
