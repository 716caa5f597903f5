"""The crawl: each page in three fresh Chromium contexts (no choice, Reject all, Accept all), and what each holds.

One browser is reused for the whole crawl; every pass gets a fresh context (no
cookies, no storage) that is closed before the next, so memory does not grow
with the number of pages. Only GET navigations to pages within the site's
origins are made: links are read from the page, never clicked; forms are never
touched; any navigation the page itself starts towards another origin is
aborted. Requests to other hosts are observed, never followed. The time bound
is checked before every navigation and caps every wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError

PASSES = ("none", "reject", "accept")
BUTTONS = {"reject": "reject", "accept": "accept"}
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
NAVIGATION_TIMEOUT = 15.0
BANNER_TIMEOUT = 5.0
QUIET = 0.3  # seconds without a request in flight that count as settled
SETTLE_MAX = 2.0
# Kept back from the time bound for closing the last context and the browser.
CLOSING = 1.0
SKIPPED_SUFFIXES = (".pdf", ".zip", ".gz", ".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".mp4", ".mp3", ".doc",
                    ".docx", ".xls", ".xlsx", ".exe", ".dmg")  # fmt: skip

# Wraps the document.cookie setter in every frame before any page script runs, to
# note the first script (its URL, from the stack) that set each cookie name.
COOKIE_SETTERS = """(() => {
  const proto = Document.prototype, own = Object.getOwnPropertyDescriptor(proto, 'cookie');
  if (!own || !own.set || window.__consentScanSetters) return;
  const setters = {};
  Object.defineProperty(window, '__consentScanSetters', { value: setters });
  Object.defineProperty(proto, 'cookie', {
    configurable: true, enumerable: own.enumerable,
    get() { return own.get.call(this); },
    set(value) {
      try {
        const name = String(value).split(';')[0].split('=')[0].trim();
        const found = /(https?:\\/\\/[^\\s()]+?):\\d+:\\d+/.exec(String(new Error().stack).split('\\n').slice(2).join('\\n'));
        if (name && !(name in setters)) setters[name] = found ? found[1] : location.href;
      } catch (e) {}
      own.set.call(this, value);
    },
  });
})();"""

# What one frame holds: its storage keys, IndexedDB names and the cookie setters noted above.
FRAME_STORAGE = """async () => {
  const keys = (store) => { try { const k = []; for (let i = 0; i < store.length; i++) k.push(store.key(i)); return k; } catch (e) { return []; } };
  let databases = [];
  try { if (indexedDB.databases) databases = (await indexedDB.databases()).map((d) => d.name).filter(Boolean); } catch (e) {}
  return { origin: location.origin, local: keys(window.localStorage), session: keys(window.sessionStorage),
           indexeddb: databases, setters: window.__consentScanSetters || {} };
}"""


class ScanStopped(Exception):
    """The time bound was reached."""


@dataclass(frozen=True)
class Item:
    """One thing a pass saw: a cookie, a storage key, an IndexedDB database or a contacted origin."""

    kind: str  # cookie | local_storage | session_storage | indexeddb | request
    name: str
    where: str  # the cookie's domain, the storage's origin, or (requests) the origin contacted
    attributes: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class PassResult:
    """What one pass over one page saw, or why it could not finish."""

    page: str
    name: str
    items: list[Item]
    error: str | None = None


@dataclass
class CrawlResult:
    """The passes in the order they ran, the pages visited, and why the crawl stopped (None: nothing left)."""

    passes: list[PassResult]
    pages: list[str]
    stopped: str | None
    elapsed: float
    service_origins: set[str]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def without_query(url: str) -> str:
    """The address without query string and fragment (which may carry personal data)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def page_key(url: str) -> str:
    """The page a URL names: fragment dropped."""
    return url.partition("#")[0]


def links_within(hrefs: list[str], origins: set[str]) -> list[str]:
    """The pages among ``hrefs`` to visit: http(s), within the origins, not a download."""
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or origin_of(href) not in origins:
            continue
        if parts.path.lower().endswith(SKIPPED_SUFFIXES):
            continue
        found.append(page_key(href))
    return found


class Deadline:
    """The crawl's time bound: what is left, and a timeout for one wait capped by it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def cap(self, seconds: float) -> float:
        """``seconds`` or what is left if less; ScanStopped when nothing is."""
        left = self.left()
        if left <= 0:
            raise ScanStopped
        return min(seconds, left)


class Pass:
    """One fresh context on one page: its listeners, the navigation, the click, the settling and the collection."""

    def __init__(self, browser: Browser, site: str, origins: set[str], deadline: Deadline) -> None:
        self.site = site
        self.origins = origins
        self.deadline = deadline
        self.in_flight = 0
        self.last_activity = time.monotonic()
        self.contacted: dict[str, str] = {}  # origin -> first URL (no query)
        self.responses: list[Response] = []
        self.service_origins: set[str] = set()
        self.context: BrowserContext = browser.new_context(accept_downloads=False, service_workers="block")
        self.context.add_init_script(COOKIE_SETTERS)
        self.context.route("**/*", self._guard)
        self.context.on("request", self._started)
        self.context.on("requestfinished", self._ended)
        self.context.on("requestfailed", self._ended)
        self.context.on("response", self._answered)
        self.page: Page = self.context.new_page()

    def _guard(self, route: Route) -> None:
        request = route.request
        # The page may try to leave (a redirect by script, a meta refresh): only the origins are visited.
        leaving = request.is_navigation_request() and request.frame.parent_frame is None
        if leaving and origin_of(request.url) not in self.origins:
            route.abort()
            return
        route.continue_()

    def _started(self, request: Request) -> None:
        self.in_flight += 1
        self.last_activity = time.monotonic()
        url = request.url
        if not url.startswith(("http://", "https://")):
            return
        origin = origin_of(url)
        if urlsplit(url).path == f"/s/{self.site}/banner.js":
            self.service_origins.add(origin)  # the consent service's own origin
        if origin not in self.origins:
            self.contacted.setdefault(origin, without_query(url))

    def _answered(self, response: Response) -> None:
        self.responses.append(response)

    def _ended(self, request: Request) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.last_activity = time.monotonic()

    def settle(self) -> None:
        """Wait until no request has been in flight for a moment, at most SETTLE_MAX (and the deadline)."""
        end = time.monotonic() + self.deadline.cap(SETTLE_MAX)
        while time.monotonic() < end:
            if self.in_flight == 0 and time.monotonic() - self.last_activity >= QUIET:
                return
            self.page.wait_for_timeout(50)

    def run(self, url: str, name: str) -> list[str]:
        """Load ``url``, make the pass's choice, settle; return the page's links (no choice pass only)."""
        self.page.goto(url, wait_until="load", timeout=self.deadline.cap(NAVIGATION_TIMEOUT) * 1000)
        if name in BUTTONS:
            button = self.page.locator(f"#consent-banner button[data-action={BUTTONS[name]}]").first
            try:
                button.click(timeout=self.deadline.cap(BANNER_TIMEOUT) * 1000)
            except PlaywrightError as error:
                if self.deadline.left() <= 0:
                    raise ScanStopped from error
                raise PlaywrightError(f"no banner with a {BUTTONS[name]!r} button showed within the wait") from error
        self.settle()
        if name != "none" or origin_of(self.page.url) not in self.origins:
            return []
        hrefs: list[str] = self.page.eval_on_selector_all(
            "a[href]:not([download])", "links => links.map((a) => a.href)"
        )
        return links_within(hrefs, self.origins)

    def collect(self) -> list[Item]:
        """Every cookie the context holds, the storage of every frame, the origins contacted."""
        frames: list[dict[str, Any]] = []
        for frame in self.page.frames:
            if not frame.url.startswith(("http://", "https://")):
                continue
            try:
                frames.append(frame.evaluate(FRAME_STORAGE))
            except PlaywrightError:
                continue  # a frame that went away meanwhile
        setters: dict[str, str] = {}
        for frame_storage in frames:
            for cookie_name, script in frame_storage["setters"].items():
                setters.setdefault(cookie_name, without_query(script))
        for response in self.responses[:500]:
            try:
                values = response.header_values("set-cookie")
            except PlaywrightError:
                continue
            for value in values:
                for line in value.split("\n"):
                    cookie_name = line.split(";")[0].split("=")[0].strip()
                    if cookie_name:
                        setters.setdefault(cookie_name, without_query(response.url))
        now = time.time()
        items = []
        for cookie in self.context.cookies():
            expires = cookie.get("expires", -1)
            items.append(
                Item(
                    "cookie",
                    cookie["name"],
                    cookie["domain"],
                    {
                        "domain": cookie["domain"],
                        "path": cookie["path"],
                        "expires": expires if expires > 0 else None,
                        "lifetime_seconds": round(expires - now) if expires > 0 else None,
                        "http_only": cookie["httpOnly"],
                        "secure": cookie["secure"],
                        "same_site": cookie["sameSite"],
                        "set_by": setters.get(cookie["name"]),
                    },
                )
            )
        for frame_storage in frames:
            for kind, key in (("local_storage", "local"), ("session_storage", "session"), ("indexeddb", "indexeddb")):
                for stored in frame_storage[key]:
                    items.append(Item(kind, stored, frame_storage["origin"], {"origin": frame_storage["origin"]}))
        for origin, first_url in self.contacted.items():
            if origin not in self.service_origins:
                items.append(Item("request", origin, origin, {"url": first_url}))
        return list(dict.fromkeys(items))  # one item per kind, name and place

    def close(self) -> None:
        try:
            self.context.close()
        except PlaywrightError:
            pass


def crawl(
    site: str,
    urls: list[str],
    origins: set[str],
    *,
    max_pages: int,
    max_seconds: float,
    chromium: Path,
    progress: Callable[[int, str], None],
) -> CrawlResult:
    """Visit up to ``max_pages`` pages from ``urls`` (breadth first) within ``max_seconds``, three passes each."""
    started = time.monotonic()
    deadline = Deadline(max_seconds - min(CLOSING, max_seconds / 4))
    queue = [page_key(url) for url in urls]
    queued = set(queue)
    pages: list[str] = []
    passes: list[PassResult] = []
    service_origins: set[str] = set()
    stopped: str | None = None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=ARGS, timeout=deadline.cap(30) * 1000
        )
        try:
            while queue:
                if len(pages) >= max_pages:
                    stopped = "max-pages"
                    break
                url = queue.pop(0)
                progress(len(pages), url)
                pages.append(url)
                try:
                    for name in PASSES:
                        links = _one_pass(browser, site, origins, deadline, url, name, passes, service_origins)
                        for link in links:
                            if link not in queued:
                                queued.add(link)
                                queue.append(link)
                except ScanStopped:
                    stopped = "max-seconds"
                    break
        finally:
            browser.close()
    progress(len(pages), "")
    return CrawlResult(passes, pages, stopped, time.monotonic() - started, service_origins)


def _one_pass(
    browser: Browser,
    site: str,
    origins: set[str],
    deadline: Deadline,
    url: str,
    name: str,
    passes: list[PassResult],
    service_origins: set[str],
) -> list[str]:
    deadline.cap(1)  # checked before every navigation
    current = Pass(browser, site, origins, deadline)
    try:
        try:
            links = current.run(url, name)
            error = None
        except PlaywrightError as failure:
            if deadline.left() <= 0:
                raise ScanStopped from failure
            links, error = [], str(failure.message).splitlines()[0]
        passes.append(PassResult(url, name, current.collect(), error))
        service_origins.update(current.service_origins)
        return links
    finally:
        current.close()
