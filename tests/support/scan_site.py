"""A small shop for the scanner to crawl, with what a scan must find, and the servers around it.

``ScanSite`` serves pages that embed the banner of a running service. Each page
holds: a script that sets ``_ga`` before any choice (the leak); an HttpOnly
cookie set by the server; a frame from a second local port, blocked until
``functional`` is granted, that sets its own cookie; a local storage key; an
analytics script, blocked until consent, that sets a cookie the inventory does
not declare; and a link to another host and a form, which the scanner must
leave alone. The last page sends the browser to that other host once loaded,
which the scanner must refuse. ``Recorder`` is any other host: it only notes what reached it.
"""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.inventory import write_site
from tests.support.ports import PageHandler

SERVER_COOKIE = "shop_session"
FRAME_COOKIE = "frame_pref"
STORAGE_KEY = "shop_basket"
LEAKED = "_ga"
AFTER_ACCEPT = "_hjSessionUser_42"
NEVER_SET = "_fbp"


class Recorder(ThreadingHTTPServer):
    """A host on its own port that notes every request (method and path) and answers a tiny page."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port = int(self.server_address[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def note(self, method: str, path: str) -> None:
        with self.lock:
            self.requests.append((method, path))

    def page(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path == "/frame.html":
            script = f"document.cookie = '{FRAME_COOKIE}=1; Path=/; Max-Age=2592000; SameSite=Lax';"
            return f"<!doctype html><title>frame</title><script>{script}</script><p>Chat</p>", {}
        return "<!doctype html><title>elsewhere</title>", {}


class ScanSite(Recorder):
    """The shop: ``pages`` pages linked in a chain from ``/``, each as described above; ``delay`` slows each page."""

    def __init__(self, frame_host: Recorder, elsewhere: Recorder, pages: int = 3, delay: float = 0.0) -> None:
        super().__init__()
        self.frame_host = frame_host
        self.elsewhere = elsewhere
        self.pages = pages
        self.delay = delay
        self.service = ""

    def path(self, number: int) -> str:
        return "/" if number == 1 else f"/page{number}.html"

    def page(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path == "/ga.js":
            return f"document.cookie = '{LEAKED}=GA1.1.42.42; Path=/; Max-Age=63072000; SameSite=Lax';", {}
        numbers = [n for n in range(1, self.pages + 1) if self.path(n) == path]
        if not numbers:
            return None
        time.sleep(self.delay)
        number = numbers[0]
        links = "".join(f'<a href="{self.path(n)}#top">page {n}</a> ' for n in range(1, self.pages + 1) if n != number)
        hotjar = f"document.cookie = '{AFTER_ACCEPT}=x; Path=/; Max-Age=31536000; SameSite=Lax';"
        # The last page tries to send the browser to the partner once loaded.
        leave = f"location.href = '{self.elsewhere.origin}/redirected';" if number == self.pages else ""
        body = (
            f'<main><h1>Shop page {number}</h1><nav>{links}<a href="{self.elsewhere.origin}/away">our partner</a></nav>'
            '<form method="post" action="/order"><input name="q" value="1"><button>Order</button></form>'
            f'<iframe data-consent="functional" data-src="{self.frame_host.origin}/frame.html" title="chat"></iframe>'
            f'<script>localStorage.setItem("{STORAGE_KEY}", "[]");</script>'
            f'<script type="text/plain" data-consent="analytics">{hotjar}</script>'
            f"<script>addEventListener('load', () => setTimeout(() => {{ {leave} }}, 10));</script></main>"
        )
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
            f'<script src="/ga.js"></script><script src="{self.service}/s/shop/banner.js" async></script>'
            f"</head><body>{body}</body></html>"
        )
        return html, {"Set-Cookie": f"{SERVER_COOKIE}=s1; Path=/; HttpOnly; SameSite=Lax"}

    def page_paths_requested(self) -> set[str]:
        with self.lock:
            return {path for method, path in self.requests if method == "GET" and path != "/ga.js"}


class _Handler(PageHandler):
    server: Recorder

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.partition("?")[0]
        self.server.note("GET", path)
        found = self.server.page(path)
        if found is None:
            self.send_page(404, "text/plain", "not found", {})
            return
        body, headers = found
        kind = "text/javascript" if path.endswith(".js") else "text/html; charset=utf-8"
        self.send_page(200, kind, body, headers)

    def do_POST(self) -> None:  # noqa: N802
        self.server.note("POST", self.path.partition("?")[0])
        self.send_page(303, "text/plain", "", {"Location": "/"})


def _cookie(name: str, category: str, expiry: str, match: str = "exact") -> dict[str, Any]:
    return {
        "name": name,
        "match": match,
        "category": category,
        "provider": "Test Shop",
        "purpose": {"en": f"The {name} of the test shop."},
        "expiry": expiry,
    }


def write_shop_inventory(folder: Path, site: ScanSite, service: str) -> Path:
    """The shop's inventory: every item of the site declared but the one set after Accept all, and one never set.

    The policy page is the service's declaration (``service`` is its address), outside the shop's origins.
    """
    write_site(
        folder / "shop.yaml",
        site="shop",
        name="Test Shop",
        origins=[site.origin],
        policy_url=f"{service}/s/shop/cookies",
        languages=["en"],
        texts={},
        categories={},
        cookies=[
            _cookie(SERVER_COOKIE, "necessary", "session"),
            _cookie(STORAGE_KEY, "necessary", "1 year"),
            _cookie(FRAME_COOKIE, "functional", "30 days"),
            _cookie(LEAKED, "analytics", "2 years", match="prefix"),
            _cookie(NEVER_SET, "advertising", "3 months"),
        ],
    )
    return folder
