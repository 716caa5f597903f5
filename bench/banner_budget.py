"""The banner's budgets on the demo shop: first-load size, time to visible, layout shift.

Starts the service with gunicorn on a free loopback port (temporary SQLite log),
then measures:

- size: the gzip bytes of everything the first layer needs (the one
  ``banner.js`` request), and how many requests the banner made before the
  visitor did anything;
- speed: from DOMContentLoaded to the first animation frame in which the
  banner is rendered, median of ``--loads`` cold loads (a fresh browser
  context each, as a first visit) in Chromium;
- layout: cumulative layout shift (``layout-shift`` entries without recent
  input) over loading the page, opening and closing the preferences, and
  accepting (which loads the trackers and the video).

Run from the project root: ``python3 bench/banner_budget.py [--loads 9]``.
Exit status 1 when a budget is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CONSENT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
SIZE_BUDGET = 8 * 1024
VISIBLE_BUDGET_MS = 50.0
SHIFT_BUDGET = 0.0
# Runs before any page script: notes DOMContentLoaded, the first frame showing the banner, and layout shifts.
PROBE = """
window.__probe = {dcl: null, visible: null, shift: 0};
document.addEventListener('DOMContentLoaded', () => { window.__probe.dcl = performance.now(); });
new PerformanceObserver(list => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__probe.shift += e.value;
}).observe({type: 'layout-shift', buffered: true});
(function frame() {
  const host = document.getElementById('consent-banner');
  const layer = host && host.shadowRoot && host.shadowRoot.querySelector('section');
  if (layer && !layer.hidden && layer.checkVisibility()) { window.__probe.visible = performance.now(); return; }
  requestAnimationFrame(frame);
})();
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_service() -> Iterator[str]:
    """gunicorn serving the demo inventory on a free port; yields its URL."""
    folder = Path(tempfile.mkdtemp(prefix="banner-budget-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    inventory = (ROOT / "cookies.yaml").read_text(encoding="utf-8")
    (folder / "cookies.yaml").write_text(inventory.replace("http://127.0.0.1:8000", url), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSENT_BIND": f"127.0.0.1:{port}",
        "CONSENT_WORKERS": "2",
        "CONSENT_DATABASE_URL": f"sqlite:///{folder / 'consent.db'}",
        "CONSENT_SECRET_KEY": "bench-secret-for-the-banner-budget",
        "CONSENT_ADMIN_TOKENS": "bench-admin-token",
        "CONSENT_INVENTORY": str(folder / "cookies.yaml"),
        "CONSENT_ACCESS_LOG": str(folder / "access.log"),
    }
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    log = (folder / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the service did not start:\n" + (folder / "gunicorn.log").read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def first_load_bytes(url: str) -> int:
    """Bytes on the wire for banner.js, gzip accepted, as a browser asks for it."""
    request = urllib.request.Request(f"{url}/s/demo/banner.js", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        return len(response.read())


def measure_load(browser: Browser, url: str) -> tuple[float, float, int]:
    """One cold visit: ms from DOMContentLoaded to visible, layout shift, banner requests before any click."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.add_init_script(PROBE)
        page.goto(f"{url}/demo")
        page.wait_for_function("() => window.__probe.visible !== null", timeout=10_000)
        page.wait_for_timeout(300)
        made = [u for u in requests if u.startswith(f"{url}/s/") or u.startswith(f"{url}/api/")]
        page.locator("#consent-banner section button[data-action=customise]").click()
        page.keyboard.press("Escape")
        page.locator("#consent-banner section button[data-action=accept]").click()
        page.wait_for_timeout(600)
        probe = page.evaluate("window.__probe")
        return max(0.0, probe["visible"] - probe["dcl"]), float(probe["shift"]), len(made)
    finally:
        context.close()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=9, help="cold page loads to take the median of (at least 5)")
    loads = max(5, parser.parse_args().loads)
    with running_service() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            size = first_load_bytes(url)
            measure_load(browser, url)  # warm the service and the browser; not counted
            results = [measure_load(browser, url) for _ in range(loads)]
        finally:
            browser.close()
    visible = statistics.median(r[0] for r in results)
    shift = max(r[1] for r in results)
    requests = max(r[2] for r in results)
    rows = [
        (f"first load, gzip ({requests} request)", f"{size:,} B", f"{SIZE_BUDGET:,} B",
         size <= SIZE_BUDGET and requests == 1),
        (f"visible after DOMContentLoaded (median of {loads})", f"{visible:.1f} ms", f"{VISIBLE_BUDGET_MS:.0f} ms",
         visible <= VISIBLE_BUDGET_MS),
        ("cumulative layout shift (worst load)", f"{shift:.4f}", f"{SHIFT_BUDGET:g}", shift <= SHIFT_BUDGET),
    ]  # fmt: skip
    for name, figure, budget, ok in rows:
        print(f"{name:<48} {figure:>10}   budget {budget:>8}   {verdict(ok)}")
    print("visible per load (ms):", ", ".join(f"{r[0]:.1f}" for r in results))
    return 0 if all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
