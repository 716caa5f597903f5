"""The crawl: each page in three fresh Chromium contexts (no choice, Reject all, Accept all), and what each holds.

One browser is reused for the whole crawl; every pass gets a fresh context (no
cookies, no storage) that is closed once the pass is done. At most
``CONCURRENT`` passes run at a time (the three of a page, or the last of one and
the first of the next), so memory does not grow with the number of pages,
while one pass's waiting overlaps another's work. Only GET navigations to pages within the site's
origins are made: links are read from the page, never clicked; forms are never
touched; any navigation the page itself starts towards another origin is
aborted. Requests to other hosts are observed, never followed. The time bound
is checked before every navigation and caps every wait.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from playwright.async_api import Browser, BrowserContext, Page, Request, Response, Route, async_playwright
from playwright.async_api import Error as PlaywrightError

PASSES = ("none", "reject", "accept")
BUTTONS = {"reject": "reject", "accept": "accept"}
# One process fewer per browser (the GPU thread runs in the browser process): measurably cheaper on 2 cores.
ARGS = ["--no-sandbox", "--disable-gpu", "--in-process-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-sync"]  # fmt: skip
NAVIGATION_TIMEOUT = 15.0
BANNER_TIMEOUT = 5.0
QUIET = 0.3  # seconds without a request in flight that count as settled
SETTLE_MAX = 2.0
CONCURRENT = 3
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
        const stack = String(new Error().stack).split('\\n').slice(2).join('\\n');
        const found = /(https?:\\/\\/[^\\s()]+?):\\d+:\\d+/.exec(stack);
        if (name && !(name in setters)) setters[name] = found ? found[1] : location.href;
      } catch (e) {}
      own.set.call(this, value);
    },
  });
})();"""

# What one frame holds: its storage keys, IndexedDB names and the cookie setters noted above.
FRAME_STORAGE = """async () => {
  const keys = (store) => {
    try {
      const found = [];
      for (let i = 0; i < store.length; i++) found.push(store.key(i));
      return found;
    } catch (e) { return []; }
  };
  let databases = [];
  try {
    if (indexedDB.databases) databases = (await indexedDB.databases()).map((d) => d.name).filter(Boolean);
  } catch (e) {}
  return { origin: location.origin, local: keys(window.localStorage), session: keys(window.sessionStorage),
           indexeddb: databases, setters: window.__consentScanSetters || {} };
}"""


class ScanStopped(Exception):
    """The time bound was reached."""


class BrowserError(Exception):
    """Chromium could not be started; the message says which binary and why."""


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

    def __init__(self, site: str, origins: set[str], deadline: Deadline) -> None:
        self.site = site
        self.origins = origins
        self.deadline = deadline
        self.in_flight = 0
        self.last_activity = time.monotonic()
        self.contacted: dict[str, str] = {}  # origin -> first URL (no query)
        self.requests: dict[str, int] = {}  # origin -> requests that left the browser
        self.responses: list[Response] = []
        self.service_origins: set[str] = set()
        self.context: BrowserContext | None = None
        own = "|".join(re.escape(origin) for origin in sorted(origins))
        self.elsewhere = re.compile(f"^(?!(?:{own})(?:[/?#]|$))", re.IGNORECASE)

    async def open(self, browser: Browser) -> Page:
        # Reduced motion: the banner shows without its entry animation, so it is clicked without waiting for it.
        self.context = await browser.new_context(
            accept_downloads=False, service_workers="block", reduced_motion="reduce"
        )
        await self.context.add_init_script(COOKIE_SETTERS)
        # Only requests to other origins come to the guard: the site's own go straight through.
        await self.context.route(self.elsewhere, self._guard)
        self.context.on("request", self._started)
        self.context.on("requestfinished", self._ended)
        self.context.on("requestfailed", self._ended)
        self.context.on("response", self._answered)
        return await self.context.new_page()

    async def _guard(self, route: Route) -> None:
        request = route.request
        # The page may try to leave (a redirect by script, a meta refresh): only the origins are visited.
        leaving = request.is_navigation_request() and request.frame.parent_frame is None
        try:
            if leaving and origin_of(request.url) not in self.origins:
                target = origin_of(request.url)
                self.requests[target] = self.requests.get(target, 0) - 1  # refused: it never reached that host
                # A 204 answer to a navigation leaves the page where it is (an abort would show an error page).
                await route.fulfill(status=204)
            else:
                await route.continue_()
        except PlaywrightError:
            pass  # the context closed meanwhile

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
            self.requests[origin] = self.requests.get(origin, 0) + 1

    def _answered(self, response: Response) -> None:
        self.responses.append(response)

    def _ended(self, request: Request) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.last_activity = time.monotonic()

    async def settle(self) -> None:
        """Wait until no request has been in flight for a moment, at most SETTLE_MAX (and the deadline)."""
        end = time.monotonic() + self.deadline.cap(SETTLE_MAX)
        while time.monotonic() < end:
            if self.in_flight == 0 and time.monotonic() - self.last_activity >= QUIET:
                return
            await asyncio.sleep(0.05)

    async def run(self, page: Page, url: str, name: str) -> list[str]:
        """Load ``url``, make the pass's choice, settle; return the page's links (no choice pass only)."""
        await page.goto(url, wait_until="load", timeout=self.deadline.cap(NAVIGATION_TIMEOUT) * 1000)
        if name in BUTTONS:
            button = page.locator(f"#consent-banner button[data-action={BUTTONS[name]}]").first
            try:
                await button.click(timeout=self.deadline.cap(BANNER_TIMEOUT) * 1000)
            except PlaywrightError as error:
                if self.deadline.left() <= 0:
                    raise ScanStopped from error
                raise PlaywrightError(f"no banner with a {BUTTONS[name]!r} button showed within the wait") from error
        await self.settle()
        if name != "none" or origin_of(page.url) not in self.origins:
            return []
        hrefs: list[str] = await page.eval_on_selector_all(
            "a[href]:not([download])", "links => links.map((a) => a.href)"
        )
        return links_within(hrefs, self.origins)

    async def collect(self, page: Page) -> list[Item]:
        """Every cookie the context holds, the storage of every frame, the origins contacted."""
        assert self.context is not None
        frames: list[dict[str, Any]] = []
        for frame in page.frames:
            if not frame.url.startswith(("http://", "https://")):
                continue
            try:
                frames.append(await frame.evaluate(FRAME_STORAGE))
            except PlaywrightError:
                continue  # a frame that went away meanwhile
        setters: dict[str, str] = {}
        for frame_storage in frames:
            for cookie_name, script in frame_storage["setters"].items():
                setters.setdefault(cookie_name, without_query(script))
        for response in self.responses[:500]:
            try:
                values = await response.header_values("set-cookie")
            except PlaywrightError:
                continue
            for value in values:
                for line in value.split("\n"):
                    cookie_name = line.split(";")[0].split("=")[0].strip()
                    if cookie_name:
                        setters.setdefault(cookie_name, without_query(response.url))
        now = time.time()
        items = []
        for cookie in await self.context.cookies():
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
            if origin not in self.service_origins and self.requests.get(origin, 0) > 0:
                items.append(Item("request", origin, origin, {"url": first_url}))
        return list(dict.fromkeys(items))  # one item per kind, name and place

    async def close(self) -> None:
        if self.context is None:
            return
        try:
            await self.context.close()
        except PlaywrightError:
            pass


class Crawler:
    """The pages to visit and the passes done: up to CONCURRENT passes at a time, in page order."""

    def __init__(self, site: str, origins: set[str], max_pages: int, deadline: Deadline) -> None:
        self.site = site
        self.origins = origins
        self.max_pages = max_pages
        self.deadline = deadline
        self.jobs: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.queued: set[str] = set()
        self.pages: list[str] = []
        self.passes: list[PassResult] = []
        self.service_origins: set[str] = set()
        self.stopped: str | None = None

    def add_page(self, url: str) -> None:
        if url in self.queued:
            return
        if len(self.pages) >= self.max_pages:
            self.stopped = self.stopped or "max-pages"
            return
        self.queued.add(url)
        self.pages.append(url)
        for name in PASSES:
            self.jobs.put_nowait((url, name))

    async def worker(self, browser: Browser, progress: Callable[[int, str], None]) -> None:
        while True:
            url, name = await self.jobs.get()
            try:
                if self.stopped != "max-seconds":
                    if name == "none":
                        progress(self.pages.index(url), url)
                    await self.one_pass(browser, url, name)
            except ScanStopped:
                self.stopped = "max-seconds"
            finally:
                self.jobs.task_done()

    async def one_pass(self, browser: Browser, url: str, name: str) -> None:
        self.deadline.cap(1)  # checked before every navigation
        current = Pass(self.site, self.origins, self.deadline)
        try:
            page = await current.open(browser)
            try:
                links = await current.run(page, url, name)
                error = None
            except PlaywrightError as failure:
                if self.deadline.left() <= 0:
                    raise ScanStopped from failure
                links, error = [], str(failure.message).splitlines()[0]
            self.passes.append(PassResult(url, name, await current.collect(page), error))
            self.service_origins.update(current.service_origins)
            for link in links:
                self.add_page(link)
        finally:
            await current.close()


async def _crawl(
    site: str, urls: list[str], origins: set[str], max_pages: int, deadline: Deadline, chromium: Path,
    progress: Callable[[int, str], None],
) -> Crawler:  # fmt: skip
    crawler = Crawler(site, origins, max_pages, deadline)
    for url in urls:
        crawler.add_page(page_key(url))
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=str(chromium), args=ARGS, timeout=deadline.cap(30) * 1000
            )
        except PlaywrightError as error:
            reason = str(error.message).splitlines()[0]
            raise BrowserError(f"could not start Chromium at {chromium}: {reason}") from None
        workers = [asyncio.create_task(crawler.worker(browser, progress)) for _ in range(CONCURRENT)]
        try:
            await crawler.jobs.join()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await browser.close()
    return crawler


def _run(make: Callable[[], Any]) -> Any:
    """Run the coroutine ``make()`` returns to its end; in a thread of its own if this one already runs an event loop.

    A caller that embeds the scanner (a test run driving Playwright's sync API,
    a notebook) has a loop running, and ``asyncio.run`` refuses to nest.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = asyncio.run(make())
        except BaseException as error:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=work, name="consent-scan")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


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
    try:
        crawler = _run(lambda: _crawl(site, urls, origins, max_pages, deadline, chromium, progress))
    except ScanStopped:  # the bound ran out while the browser started
        return CrawlResult([], [], "max-seconds", time.monotonic() - started, set())
    progress(len({result.page for result in crawler.passes}), "")
    visited = [page for page in crawler.pages if any(result.page == page for result in crawler.passes)]
    return CrawlResult(crawler.passes, visited, crawler.stopped, time.monotonic() - started, crawler.service_origins)
