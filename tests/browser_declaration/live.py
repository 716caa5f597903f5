"""The live consent service and the site's own pages, for the declaration's browser tests.

The service runs under gunicorn on a free port with its own SQLite file and
an inventory whose origins list the privacy pages' server: a second HTTP
server on another port, so that every call from the widget is cross-origin.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask_migrate import upgrade
from ruamel.yaml import YAML

from consent import create_app
from consent.store.models import db

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "browser-admin-token"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    process: subprocess.Popen[bytes] = field(repr=False)

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


def write_inventory(source: Path, target: Path, origin: str) -> str:
    """Copy an inventory, its origins replaced by ``origin``; return its site key."""
    yaml = YAML(typ="rt")
    document = yaml.load(source.read_text(encoding="utf-8"))
    document["origins"] = [origin]
    with target.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
    return str(document["site"])


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the service exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                if json.load(response) == {"status": "ready"}:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the service was not ready within {START_TIMEOUT} s:\n{log.read_text()}")


def start_service(inventory: Path, origin: str, folder: Path) -> Service:
    """Migrate a fresh SQLite log, then run the service under gunicorn on a free port."""
    folder.mkdir(parents=True, exist_ok=True)
    site = write_inventory(inventory, folder / "cookies.yaml", origin)
    database = folder / "consent.db"
    config = {
        "BIND": f"127.0.0.1:{free_port()}",
        "WORKERS": "2",
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "browser-test-secret",
        "ADMIN_TOKENS": ADMIN_TOKEN,
        "INVENTORY": str(folder / "cookies.yaml"),
        "LEDGER_KEY_FILE": os.environ["CONSENT_LEDGER_KEY_FILE"],  # the run's key (tests/service_config.py)
    }
    app = create_app({key: value for key, value in config.items() if key not in ("BIND", "WORKERS")})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONSENT_ACCESS_LOG": "-"}
    env.update({f"CONSENT_{key}": value for key, value in config.items()})
    log = folder / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://{config['BIND']}"
    try:
        _wait_until_ready(url, process, log)
    except BaseException:
        stop_service(process)
        raise
    return Service(url=url, database=database, site=site, process=process)


def stop_service(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn at once (SIGQUIT: no graceful wait for idle workers)."""
    process.send_signal(signal.SIGQUIT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


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
