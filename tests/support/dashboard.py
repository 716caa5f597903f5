"""The dashboard as browser tests drive it: the shop pages that embed the banner, the service, logging in."""

from __future__ import annotations

from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

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


@dataclass(frozen=True)
class Dashboard:
    """The running service: its address and the URL of its SQLite log."""

    url: str
    database_url: str


def log_in(page: Page, dashboard: Dashboard) -> None:
    """Open the dashboard, get sent to the login form, log in and land on the list of sites."""
    page.goto(f"{dashboard.url}/admin")
    expect(page).to_have_url(f"{dashboard.url}/admin/login?next=/admin")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Sites")).to_be_visible()
