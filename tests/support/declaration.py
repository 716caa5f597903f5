"""The live consent service and the site's own pages, for the declaration's browser tests.

The service runs under gunicorn on a free port with its own SQLite file and
an inventory whose origins list the privacy pages' server: a second HTTP
server on another port, so that every call from the widget is cross-origin.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.inventory import write_site
from tests.support.live import LiveService, migrate

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "browser-admin-token"


class PageServer:
    """Serves the privacy pages from their own origin: path → (body, content type, headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str, dict[str, str]]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                body, content_type, headers = route
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, path: str, body: str, content_type: str = "text/html", **headers: str) -> str:
        """Serve ``body`` at ``path``; return its URL."""
        self.routes[path] = (body.encode(), f"{content_type}; charset=utf-8", headers)
        return self.origin + path


@dataclass
class Service:
    """The consent service under gunicorn, and its consent log."""

    url: str
    database: Path
    site: str
    live: LiveService = field(repr=False)

    def stop(self) -> None:
        self.live.stop()

    def records(self, consent_id: str | None = None) -> list[dict[str, Any]]:
        """Records of the log, oldest first (only those of ``consent_id`` if given)."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as connection:
            connection.row_factory = sqlite3.Row
            query = "SELECT * FROM consent_records WHERE site = ?"
            params: list[str] = [self.site]
            if consent_id is not None:
                query += " AND consent_id = ?"
                params.append(consent_id)
            rows = connection.execute(query + " ORDER BY id", params).fetchall()
        return [dict(row) for row in rows]

    def wait_for_records(self, consent_id: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The visitor's records once there are ``count`` of them (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.records(consent_id)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def start_service(inventory: Path, origin: str, folder: Path) -> Service:
    """Migrate a fresh SQLite log, then run the service under gunicorn on a free port."""
    folder.mkdir(parents=True, exist_ok=True)
    site = write_site(folder / "cookies.yaml", inventory, origins=[origin])
    database = folder / "consent.db"
    database_url = f"sqlite:///{database}"
    migrate(database_url)
    live = LiveService(
        database_url,
        workers=2,
        env={
            "CONSENT_ADMIN_TOKENS": ADMIN_TOKEN,
            "CONSENT_INVENTORY": str(folder / "cookies.yaml"),
            "CONSENT_RATELIMIT_ENABLED": "true",
        },
    )
    live.__enter__()
    return Service(url=live.base, database=database, site=site, live=live)


SITE_CSS = "body { font-family: Georgia, serif; color: rgb(20, 40, 60); background: rgb(250, 245, 235); }"
# The page's own script that adds the banner only later, as a slow tag manager might.
LATE_BANNER_JS = """
setTimeout(function () {
  var script = document.createElement("script");
  script.src = document.documentElement.getAttribute("data-banner");
  document.head.append(script);
}, 1500);
"""


def strict_csp(service: Service) -> str:
    """The policy of a careful site: only its own files and the consent service."""
    return (
        f"default-src 'self'; script-src 'self' {service.url}; style-src 'self' {service.url}; "
        f"connect-src {service.url}; img-src 'self' {service.url}"
    )


def privacy_page(
    pages: PageServer,
    service: Service,
    *,
    path: str = "/privacy",
    lang: str = "en",
    banner: str = "before",
    csp: bool = True,
    container: str = "",
) -> str:
    """A privacy page with the widget and the banner (``before`` it, ``after`` it, ``late`` or ``none``).

    ``container`` adds attributes to the widget's ``div``, such as ``data-lang="en"``.
    """
    base = f"{service.url}/s/{service.site}"
    banner_tag = f'<script src="{base}/banner.js" async></script>'
    widget_tag = f'<script src="{base}/declaration.js" async></script>'
    scripts = {
        "before": banner_tag + widget_tag,
        "after": widget_tag + banner_tag,
        "late": widget_tag + '<script src="/late-banner.js"></script>',
        "none": widget_tag,
    }[banner]
    pages.add("/site.css", SITE_CSS, "text/css")
    pages.add("/late-banner.js", LATE_BANNER_JS, "text/javascript")
    html = f"""<!doctype html>
<html lang="{lang}" data-banner="{base}/banner.js">
<head><meta charset="utf-8"><title>Privacy</title><link rel="stylesheet" href="/site.css">{scripts}</head>
<body>
<h1>Privacy</h1>
<p>How we use cookies:</p>
<div id="consent-declaration"{container}></div>
</body>
</html>"""
    headers = {"Content-Security-Policy": strict_csp(service)} if csp else {}
    return pages.add(path, html, **headers)
