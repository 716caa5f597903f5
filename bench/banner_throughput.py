"""The hot path: ``GET /s/demo/banner.js`` (200 gzip and 304), side by side with bare Flask serving the same bytes.

Starts the service (``gunicorn wsgi:app``) and a bare Flask app that returns the
service's own gzip body from memory with its ETag (``create_bare_app`` below),
both from the project root so that ``gunicorn.conf.py`` applies to both; drives
them in turn with wrk, interleaved, for each variant; prints medians of req/s
and the ratio service/bare. Exits 1 if a ratio is under the budget or any
request failed. Run from anywhere::

    python3 bench/banner_throughput.py [--duration 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue

sys.path.insert(0, str(Path(__file__).resolve().parent))
from post_throughput import free_port, ledger_key, stop, wait_until_answering  # noqa: E402 - the same way of serving apps

ROOT = Path(__file__).resolve().parent.parent
PATH = "/s/demo/banner.js"
BUDGET = 0.90
APPS = {"service": "wsgi:app", "bare": "bench.banner_throughput:create_bare_app()"}


@contextlib.contextmanager
def gunicorn(target: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """Serve ``target`` from the project root (so gunicorn.conf.py applies); stop it, whatever happens."""
    port = free_port()
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", target],
            cwd=ROOT,
            env={**env, "CONSENT_BIND": f"127.0.0.1:{port}"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_answering(port, process, log)
        yield port
    finally:
        stop(process)


def create_bare_app() -> Flask:
    """Bare Flask: the bytes and ETag in ``BENCH_BODY`` / ``BENCH_ETAG``, 200 or 304, from memory."""
    body = Path(os.environ["BENCH_BODY"]).read_bytes()
    etag = os.environ["BENCH_ETAG"]
    app = Flask(__name__)

    @app.get("/s/<site>/banner.js")
    def script(site: str) -> ResponseReturnValue:
        if request.if_none_match.contains(etag):
            response = Response(status=304)
        else:
            response = Response(body, mimetype="text/javascript")
            response.headers["Content-Encoding"] = "gzip"
        response.set_etag(etag)
        return response

    app.add_url_rule("/healthz", view_func=lambda: "ok")
    return app


def wrk(port: int, headers: dict[str, str], args: argparse.Namespace, seconds: int) -> tuple[float, int]:
    """req/s and failed requests (non-2xx/3xx, socket errors) of one wrk run."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise SystemExit(f"no rate from wrk:\n{output}")
    failed = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout):? (\d+)", output))
    return float(rate.group(1)), failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per app and variant (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(tempfile.mkdtemp(prefix="banner-throughput-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSENT_DATABASE_URL": f"sqlite:///{folder / 'consent.db'}",
        "CONSENT_SECRET_KEY": "bench-only-secret-key",
        "CONSENT_ADMIN_TOKENS": "bench-only-admin-token",
        "CONSENT_LEDGER_KEY_FILE": str(ledger_key()),
        "CONSENT_ACCESS_LOG": str(folder / "access.log"),
    }
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    results: dict[tuple[str, str], list[float]] = {}
    failed = 0
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(gunicorn(APPS["service"], env, folder / "service.log"))
        asked = urllib.request.Request(f"http://127.0.0.1:{port}{PATH}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(asked, timeout=10) as answer:
            (folder / "body.js.gz").write_bytes(answer.read())
            etag = answer.headers["ETag"]
        bare_env = {**env, "BENCH_BODY": str(folder / "body.js.gz"), "BENCH_ETAG": etag.strip('"')}
        ports = {"service": port, "bare": stack.enter_context(gunicorn(APPS["bare"], bare_env, folder / "bare.log"))}
        variants = {"200 gzip": {"Accept-Encoding": "gzip"}, "304": {"Accept-Encoding": "gzip", "If-None-Match": etag}}
        print(f"{os.cpu_count()} cores; wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.runs} runs")
        for app in APPS:
            for headers in variants.values():
                wrk(ports[app], headers, args, 2)  # warm-up, not counted
        for number in range(1, args.runs + 1):
            for variant, headers in variants.items():
                for app in APPS:
                    rate, errors = wrk(ports[app], headers, args, args.duration)
                    failed += errors
                    results.setdefault((variant, app), []).append(rate)
                    print(f"run {number}  {variant:8} {app:7} {rate:8.0f} req/s  failed {errors}  "
                          f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    failures = [f"{failed} requests failed"] if failed else []
    print(f"\n{'variant':8} {'service':>9} {'bare':>9}  ratio (median req/s of {args.runs})")
    for variant in variants:
        service, bare = (statistics.median(results[(variant, app)]) for app in APPS)
        print(f"{variant:8} {service:9.0f} {bare:9.0f}  {service / bare:.2f}")
        if service / bare < BUDGET:
            failures.append(f"{variant}: service/bare {service / bare:.2f} is under the budget {BUDGET:.2f}")
    for failure in failures:
        print(f"FAIL {failure}")
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
