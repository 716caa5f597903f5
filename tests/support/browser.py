"""The browser tests' world: a third-party site embedding the banner, the running service, and a visitor."""

from __future__ import annotations

import json
import sqlite3
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Locator, Page

from tests.support.ports import PageHandler

ADMIN_TOKEN = "browser-test-admin-token"

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# Sums the layout shifts a page makes without input, into window.__shift.
LAYOUT_SHIFT = """window.__shift = 0; new PerformanceObserver(list => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value;
}).observe({type: 'layout-shift', buffered: true});"""


class EmbeddingSite(ThreadingHTTPServer):
    """A third-party site: serves registered pages with their headers; ``/slow.js`` answers late.

    With ``tls`` it serves https, sharing the pages of the plain site it is given.
    """

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None, plain: EmbeddingSite | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.pages: dict[str, tuple[str, dict[str, str]]] = plain.pages if plain else {}
        self.port = int(self.server_address[1])

    def origin(self, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}"


class _Handler(PageHandler):
    server: EmbeddingSite

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path, _, query = self.path.partition("?")
        if path == "/slow.js":
            # An external script that arrives late: order must still be document order.
            time.sleep(0.3)
            self.send_page(200, "text/javascript", f"(window.ran = window.ran || []).push({json.dumps(query)});", {})
            return
        if path not in self.server.pages:
            self.send_page(404, "text/plain", "not found", {})
            return
        body, headers = self.server.pages[path]
        self.send_page(200, "text/html; charset=utf-8", body, headers)


class Service:
    """The running service: its URL, its log (SQLite) and its admin API."""

    def __init__(self, url: str, database: Path) -> None:
        self.url = url
        self.database = database

    def records(self, site: str = "demo") -> list[dict[str, Any]]:
        """Every record of ``site`` in the log, oldest first."""
        with sqlite3.connect(self.database) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM consent_records WHERE site = ? ORDER BY id", (site,))
            return [dict(row) for row in rows]

    def history(self, consent_id: str, site: str = "demo", receipt: str | None = None) -> dict[str, Any]:
        """A visitor's history through the API: with their receipt, or as admin."""
        headers = {"X-Consent-Receipt": receipt} if receipt else {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        request = urllib.request.Request(f"{self.url}/api/v1/sites/{site}/consents/{consent_id}", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]


class Pages:
    """Builds embedding pages on the third-party site, each with the banner's one script tag."""

    def __init__(self, site: EmbeddingSite, secure_site: EmbeddingSite, service: Service) -> None:
        self.site = site
        self.secure_site = secure_site
        self.service = service

    def strict_csp(self, extra_script_src: str = "") -> str:
        """The issue's policy: only the service may bring scripts, styles and connections."""
        s = self.service.url
        return f"default-src 'self'; script-src {s}{extra_script_src}; style-src {s}; connect-src {s}"

    def add(
        self,
        body: str = "<main><h1>A shop</h1><p>Products.</p></main>",
        *,
        site: str = "demo",
        head: str = "",
        lang: str = "en",
        csp: str | None = "strict",
        host: str = "127.0.0.1",
        query: str = "",
        secure: bool = False,
        loading: str = "async",
    ) -> str:
        """Register a page; return its URL."""
        path = f"/page{len(self.site.pages) + 1}.html"
        script = f'<script src="{self.service.url}/s/{site}/banner.js" {loading}></script>'
        html = (
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>Shop page</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{head}{script}</head>'
            f"<body>{body}</body></html>"
        )
        headers = {} if csp is None else {"Content-Security-Policy": self.strict_csp() if csp == "strict" else csp}
        self.site.pages[path] = (html, headers)
        return f"{(self.secure_site if secure else self.site).origin(host)}{path}{query}"


class Shop:
    """One visitor on the embedding site: their page, the banner's layers, and the service's log."""

    def __init__(self, page: Page, pages: Pages, service: Service) -> None:
        self.page = page
        self.pages = pages
        self.service = service
        self.visited: set[str] = set()

    def visit(self, body: str = "<main><h1>A shop</h1><p>Products.</p></main>", **options: Any) -> Page:
        """Open a new embedding page (options as ``Pages.add``) and wait for the banner script to run."""
        url = self.pages.add(body, **options)
        self.visited.add(url.partition("?")[0])
        self.page.goto(url)
        self.page.wait_for_function("() => window.consent !== undefined")
        return self.page

    @property
    def banner(self) -> Locator:
        """The first layer, inside the banner's open shadow root (Playwright's CSS pierces it)."""
        return self.page.locator("#consent-banner section[role=dialog]")

    @property
    def preferences(self) -> Locator:
        """The preferences dialog (the second layer)."""
        return self.page.locator("#consent-banner dialog")

    def click(self, action: str, layer: str = "banner") -> None:
        """Click a banner button by its action: accept, reject, customise, save, close."""
        (self.banner if layer == "banner" else self.preferences).locator(f"button[data-action={action}]").click()

    def cookie(self, name: str = "consent") -> dict[str, Any] | None:
        """A cookie the browser holds for the page, with its attributes."""
        return next((c for c in self.page.context.cookies() if c["name"] == name), None)

    def stored_same_site(self, name: str = "consent") -> str | None:
        """The SameSite attribute the cookie was set with, as Chromium stores it (None when absent).

        ``context.cookies()`` reports a missing attribute as Chromium's default, "Lax"; the DevTools protocol does not.
        """
        session = self.page.context.new_cdp_session(self.page)
        try:
            cookies = session.send("Network.getCookies")["cookies"]
        finally:
            session.detach()
        return next((c.get("sameSite") for c in cookies if c["name"] == name), None)

    def records(self, site: str = "demo") -> list[dict[str, Any]]:
        """The records this visitor's pages sent, oldest first."""
        return [r for r in self.service.records(site) if r["page_url"] in self.visited]

    def wait_for_records(self, count: int, site: str = "demo") -> list[dict[str, Any]]:
        """This visitor's records once there are ``count`` of them (at most 10 s)."""
        deadline = time.monotonic() + 10
        while True:
            records = self.records(site)
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.05)


AnyServer = TypeVar("AnyServer", bound=ThreadingHTTPServer)


@contextmanager
def serving(server: AnyServer) -> Iterator[AnyServer]:
    """Run a page server in a thread for the block, then shut it down."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
