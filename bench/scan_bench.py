"""Time ``consent scan`` over a local shop of N pages (three passes each) and take its peak memory.

    python3 bench/scan_bench.py                     # 5 and 20 pages, 3 runs each
    python3 bench/scan_bench.py --pages 20 --runs 5

The shop is the tests' (tests/support/scan_site.py): each page embeds the
banner of a live service (gunicorn), sets a cookie before consent, one from
the server, holds a blocked frame and script, and links to every other page.
Each run is the ``consent scan`` command as a user starts it, in its own
process; its time is the crawl's own figure in the JSON report (browser start
included, Python and the app's start not), and its memory the peak over the
command and every process under it (Chromium's), sampled every 50 ms from
/proc: as PSS, which splits the pages Chromium's processes share among them,
and as summed RSS, which counts them once per process. Budgets: 20 pages in at
most 90 s, and the peak PSS at 20 pages within 25 % of the peak at 5. Exits 1
when one is missed. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.browser import serving  # noqa: E402
from tests.support.live import LiveService, migrate  # noqa: E402
from tests.support.scan_site import Recorder, ScanSite, write_shop_inventory  # noqa: E402
from tests.support.service_config import LEDGER_KEY  # noqa: E402  (the ledger key the live service signs with)

BUDGET_SECONDS = 90.0
FLAT = 1.25


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of ``pid`` and all its descendants, as /proc shows them now.

    Summed RSS counts the pages Chromium's processes share once per process; PSS splits them among them.
    """
    rss = pss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
            for listing in Path(f"/proc/{current}/task").glob("*/children"):
                todo.extend(int(child) for child in listing.read_text().split())
        except (OSError, ValueError):
            continue
    return rss, pss


def one_run(env: dict[str, str], start: str, pages: int, chromium: str, folder: Path) -> tuple[float, int, int]:
    report = folder / "report.json"
    command = [sys.executable, "-m", "consent", "scan", "--site", "shop", "--chromium", chromium, start,
               "--max-pages", str(pages), "--max-seconds", "600", "--no-store", "--json", str(report)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_rss = peak_pss = 0
    while process.poll() is None:
        rss, pss = tree_memory(process.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.05)
    if process.returncode not in (0, 2):
        raise SystemExit(f"consent scan exited {process.returncode}")
    found = json.loads(report.read_text())
    if len(found["pages"]) != pages or found["errors"]:
        raise SystemExit(f"the scan visited {len(found['pages'])} pages with errors {found['errors']}")
    return float(found["elapsed_seconds"]), peak_rss, peak_pss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chromium", default=os.environ.get("CONSENT_CHROMIUM", "/usr/bin/chromium"))
    options = parser.parse_args()
    assert LEDGER_KEY.exists()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    folder = Path(tempfile.mkdtemp(prefix="scan-bench-"))
    database = folder / "consent.db"
    migrate(f"sqlite:///{database}")
    results: dict[int, tuple[float, int, int]] = {}
    with serving(Recorder()) as frame_host, serving(Recorder()) as elsewhere:
        with serving(ScanSite(frame_host, elsewhere, pages=max(options.pages))) as shop:
            live = LiveService(f"sqlite:///{database}", workers=2)
            live.env["CONSENT_INVENTORY"] = str(write_shop_inventory(folder / "inventory", shop, live.base))
            with live:
                shop.service = live.base
                env = {**live.env, "CONSENT_DATABASE_URL": f"sqlite:///{database}"}
                runs: dict[int, list[tuple[float, int, int]]] = {pages: [] for pages in options.pages}
                for run in range(options.runs):  # interleaved, so that the machine's load falls on every size
                    for pages in options.pages:
                        seconds, rss, pss = one_run(env, shop.origin + "/", pages, options.chromium, folder)
                        runs[pages].append((seconds, rss, pss))
                        line = f"run {run + 1}: {pages} pages, {seconds:.1f} s, RSS {rss >> 20} MB, PSS {pss >> 20} MB"
                        print(line, file=sys.stderr)
    for pages, measured in runs.items():
        results[pages] = (
            statistics.median(m[0] for m in measured),
            int(statistics.median(m[1] for m in measured)),
            int(statistics.median(m[2] for m in measured)),
        )
    print(f"load average before the runs: {load}")
    print("| pages | passes | crawl (median) | per pass | peak RSS, summed (median) | peak PSS (median) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for pages, (seconds, rss, pss) in results.items():
        per_pass = seconds / (3 * pages)
        print(f"| {pages} | {3 * pages} | {seconds:.1f} s | {per_pass:.2f} s | {rss >> 20} MB | {pss >> 20} MB |")
    failed = []
    if 20 in results and results[20][0] > BUDGET_SECONDS:
        failed.append(f"20 pages took {results[20][0]:.1f} s (budget {BUDGET_SECONDS:.0f} s)")
    smallest, largest = min(results), max(results)
    if largest > smallest and results[largest][2] > FLAT * results[smallest][2]:
        failed.append(f"peak PSS grew from {results[smallest][2] >> 20} MB to {results[largest][2] >> 20} MB")
    for problem in failed:
        print(problem, file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
