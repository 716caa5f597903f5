"""The banner's budgets on the demo shop: first-load size, time to visible, layout shift.

Starts the service with gunicorn on a free loopback port (temporary SQLite log),
then measures:

- size: the gzip bytes of everything the first layer needs (the one
  ``banner.js`` request), and how many requests the banner made before the
  visitor did anything; also, built the way the service builds it (gzip -9),
  the script for the demo inventory and for a 25-cookie, two-language one
  (the demo's plus realistic third-party cookies), the same with three
  regimes configured (opt-in, opt-out, notice; the largest of the variants
  served to each), and what each further declared cookie adds;
- speed: from DOMContentLoaded to the first animation frame in which the
  banner is rendered, median of ``--loads`` cold loads (a fresh browser
  context each, as a first visit) in Chromium;
- layout: cumulative layout shift (``layout-shift`` entries without recent
  input) over loading the page, opening and closing the preferences, and
  accepting (or, in an opt-out region, opting out), which loads the trackers
  and the video.

Speed, layout and requests are measured on the demo shop as it is, and on
the demo shop with the three regimes configured, the service trusting
CloudFront's region header: a visitor from Germany (opt-in) and one from
California (opt-out).

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
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CONSENT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
SIZE_BUDGET = 8 * 1024
DEMO_SIZE_BUDGET = 7.5 * 1024
PER_COOKIE_BUDGET = 40
# Third-party cookies as real sites declare them, to grow the demo inventory to 25 and beyond.
EXTRA_COOKIES = [
    ("_uetsid", "exact", "advertising", "Microsoft Ads"), ("_uetvid", "exact", "advertising", "Microsoft Ads"),
    ("MUID", "exact", "advertising", "Microsoft"), ("_pin_unauth", "exact", "advertising", "Pinterest"),
    ("_tt_enable_cookie", "exact", "advertising", "TikTok"), ("_ttp", "exact", "advertising", "TikTok"),
    ("_clck", "exact", "analytics", "Microsoft Clarity"), ("_clsk", "exact", "analytics", "Microsoft Clarity"),
    ("ajs_anonymous_id", "exact", "analytics", "Segment"), ("mp_", "prefix", "analytics", "Mixpanel"),
    ("intercom-id-", "prefix", "functional", "Intercom"), ("intercom-session-", "prefix", "functional", "Intercom"),
    ("__stripe_mid", "exact", "functional", "Stripe"), ("lang", "exact", "functional", "LinkedIn"),
    ("bcookie", "exact", "advertising", "LinkedIn"), ("_hjSessionUser_\\d+", "regex", "analytics", "Hotjar"),
    ("__kla_id", "exact", "advertising", "Klaviyo"), ("_scid", "exact", "advertising", "Snap"),
    ("_rdt_uuid", "exact", "advertising", "Reddit"), ("__qca", "exact", "analytics", "Quantcast"),
    ("NID", "exact", "advertising", "Google"),
]  # fmt: skip
# Three regimes, as a site selling in Europe and the US would map them.
REGIONS = {
    "EU": "opt-in", "GB": "opt-in", "CH": "opt-in", "BR": "opt-in",
    "US-CA": "opt-out", "US-CO": "opt-out", "US": "notice",
}  # fmt: skip
# A visitor per regime, as CloudFront names their region (country, subdivision).
VISITORS = {"opt-in": ("DE", None), "opt-out": ("US", "CA"), "notice": ("US", "NY")}
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
def running_service(regions: bool = False) -> Iterator[str]:
    """gunicorn serving the demo inventory (with ``regions``: the three regimes) on a free port; yields its URL."""
    folder = Path(tempfile.mkdtemp(prefix="banner-budget-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    inventory = (ROOT / "cookies.yaml").read_text(encoding="utf-8").replace("http://127.0.0.1:8000", url)
    if regions:
        inventory += "regions:\n" + "".join(f"  {key}: {regime}\n" for key, regime in REGIONS.items())
    (folder / "cookies.yaml").write_text(inventory, encoding="utf-8")
    from consent.ledger.keys import generate_pem, write_private

    # Outside the demo the service starts only with the ledger's signing key.
    write_private(folder / "ledger-key.pem", generate_pem())
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
        "CONSENT_LEDGER_KEY_FILE": str(folder / "ledger-key.pem"),
        "CONSENT_REGION_HEADER": "cloudfront",
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


def built_size(cookies: int, regions: bool = False) -> int:
    """gzip -9 bytes of the script the service builds for the demo inventory grown to ``cookies`` cookies.

    With ``regions``, the three regimes configured: the largest of the scripts served to a visitor of each.
    """
    from consent.embed.banner import SCRIPT_SOURCE, build_script
    from consent.inventory.sites import load_site

    yaml = YAML(typ="safe")
    document = yaml.load((ROOT / "cookies.yaml").read_text(encoding="utf-8"))
    if regions:
        document["regions"] = REGIONS
    for name, match, category, provider in EXTRA_COOKIES[: max(0, cookies - len(document["cookies"]))]:
        document["cookies"].append({
            "name": name, "match": match, "category": category, "provider": provider, "expiry": "1 year",
            "purpose": {"en": f"Set by {provider}.", "nl": f"Gezet door {provider}."},
        })  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cookies.yaml"
        with path.open("w", encoding="utf-8") as file:
            yaml.dump(document, file)
        site = load_site(path)
    source = SCRIPT_SOURCE.read_text(encoding="utf-8")
    if not regions:
        return len(build_script(site, "https://consent.example.com", source).gzipped)
    variants = ("DE", "US-CA", "US-NY")
    return max(len(build_script(site, "https://consent.example.com", source, region).gzipped) for region in variants)


def region_headers(regime: str | None) -> dict[str, str]:
    """CloudFront's headers for a visitor from a region of ``regime`` (none for None)."""
    if regime is None:
        return {}
    country, subdivision = VISITORS[regime]
    headers = {"CloudFront-Viewer-Country": country}
    if subdivision:
        headers["CloudFront-Viewer-Country-Region"] = subdivision
    return headers


def first_load_bytes(url: str, regime: str | None = None) -> int:
    """Bytes on the wire for banner.js, gzip accepted, as a browser (from a region of ``regime``) asks for it."""
    headers = {"Accept-Encoding": "gzip", **region_headers(regime)}
    request = urllib.request.Request(f"{url}/s/demo/banner.js", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        return len(response.read())


def measure_load(browser: Browser, url: str, regime: str | None = None) -> tuple[float, float, int]:
    """One cold visit: ms from DOMContentLoaded to visible, layout shift, banner requests before any click.

    ``regime``: the visitor comes from a region of that regime (CloudFront's headers say so).
    """
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_extra_http_headers(region_headers(regime))
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
        answer = "opt-out" if regime == "opt-out" else "accept"
        page.locator(f"#consent-banner section button[data-action={answer}]").click()
        page.wait_for_timeout(600)
        probe = page.evaluate("window.__probe")
        return max(0.0, probe["visible"] - probe["dcl"]), float(probe["shift"]), len(made)
    finally:
        context.close()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# The pages measured side by side: the demo as it is, and with three regimes for a visitor of two of them.
LOADS = {"demo": None, "regions, opt-in visitor": "opt-in", "regions, opt-out visitor": "opt-out"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=9, help="cold page loads to take the median of (at least 5)")
    loads = max(5, parser.parse_args().loads)
    # This checkout's code, whichever one is installed.
    sys.path.insert(0, str(ROOT))
    with running_service() as plain, running_service(regions=True) as regional, sync_playwright() as playwright:
        urls = {name: plain if regime is None else regional for name, regime in LOADS.items()}
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            size = first_load_bytes(plain)
            regional_sizes = {regime: first_load_bytes(regional, regime) for regime in VISITORS}
            for name, regime in LOADS.items():
                measure_load(browser, urls[name], regime)  # warm the service and the browser; not counted
            results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in LOADS}
            # Interleaved, so that the machine's load weighs on every variant alike.
            for _ in range(loads):
                for name, regime in LOADS.items():
                    results[name].append(measure_load(browser, urls[name], regime))
        finally:
            browser.close()
    demo_cookies = len(YAML(typ="safe").load((ROOT / "cookies.yaml").read_text(encoding="utf-8"))["cookies"])
    demo_built, built_25, built_35 = built_size(demo_cookies), built_size(25), built_size(35)
    regions_25 = built_size(25, regions=True)
    per_cookie = (built_35 - built_25) / 10
    rows = [
        (f"first load, gzip ({max(r[2] for r in results['demo'])} request)", f"{size:,} B", f"{SIZE_BUDGET:,} B",
         size <= SIZE_BUDGET),
        *[(f"first load, gzip, regions, {regime} visitor", f"{figure:,} B", f"{SIZE_BUDGET:,} B",
           figure <= SIZE_BUDGET) for regime, figure in regional_sizes.items()],
        (f"built, gzip -9, demo ({demo_cookies} cookies)", f"{demo_built:,} B", f"{DEMO_SIZE_BUDGET:,.0f} B",
         demo_built <= DEMO_SIZE_BUDGET),
        ("built, gzip -9, 25 cookies, 2 languages", f"{built_25:,} B", f"{SIZE_BUDGET:,} B", built_25 <= SIZE_BUDGET),
        ("built, gzip -9, 25 cookies, 2 languages, 3 regimes", f"{regions_25:,} B", f"{SIZE_BUDGET:,} B",
         regions_25 <= SIZE_BUDGET),
        ("each further cookie (25 to 35)", f"{per_cookie:.1f} B", f"{PER_COOKIE_BUDGET} B",
         per_cookie <= PER_COOKIE_BUDGET),
    ]  # fmt: skip
    for name, measured in results.items():
        visible = statistics.median(r[0] for r in measured)
        shift = max(r[1] for r in measured)
        requests = max(r[2] for r in measured)
        rows += [
            (f"{name}: visible after DOMContentLoaded (median of {loads})", f"{visible:.1f} ms",
             f"{VISIBLE_BUDGET_MS:.0f} ms", visible <= VISIBLE_BUDGET_MS),
            (f"{name}: layout shift (worst load)", f"{shift:.4f}", f"{SHIFT_BUDGET:g}", shift <= SHIFT_BUDGET),
            (f"{name}: requests before the banner shows", f"{requests}", "1", requests == 1),
        ]  # fmt: skip
    for name, figure, budget, ok in rows:
        print(f"{name:<62} {figure:>10}   budget {budget:>8}   {verdict(ok)}")
    for name, measured in results.items():
        print(f"visible per load, {name} (ms):", ", ".join(f"{r[0]:.1f}" for r in measured))
    return 0 if all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
