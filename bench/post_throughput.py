"""Throughput of recording a consent, side by side with a bare Flask-SQLAlchemy insert (the ceiling).

For each database (SQLite, PostgreSQL), starts the service (``gunicorn wsgi:app``)
and ``bench/bare_app.py`` under the same gunicorn settings, each on a fresh,
migrated database; drives them in turn with wrk (the SPEC's POST body, a
unique event_id per request); prints medians of req/s, p50 and p99 and the
ratio service/bare, both as the ratio of the medians and as the median of each
run's ratio to the bare run beside it; and checks after every run that the
table holds a row for every 2xx answer. The bare app inserts the way
Flask-SQLAlchemy does (``db.session.add`` and ``commit``), or with a Core
``INSERT`` under ``--bare-core`` (a stricter baseline, reported without a
budget). Exits 1 if the median run ratio is under the budget, any request
failed or any record was lost. Run from anywhere::

    python3 bench/post_throughput.py [--duration 10] [--runs 3] [--databases sqlite,postgresql] [--bare-core]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "post_consent.lua"
PATH = "/api/v1/sites/demo/consents"
APPS = {"service": "wsgi:app", "bare": "bench.bare_app:create_app()"}
# Migrations run the way the service's own serve command runs them.
MIGRATE = """
from flask_migrate import upgrade
from consent import create_app
with create_app().app_context():
    upgrade()
"""
# The SPEC: recording a consent at least as fast as a bare Flask-SQLAlchemy insert.
BUDGET = 1.00
# The service as deployed, with rate limits that one benchmark client never reaches:
# the limiter still counts every request, it never refuses one. --env overrides these.
SERVICE_ENV = {
    "CONSENT_SECRET_KEY": "bench-only-secret-key",
    "CONSENT_ADMIN_TOKENS": "bench-only-admin-token",
    "CONSENT_RATELIMIT_CONSENT_PER_CLIENT": "100000000 per minute",
    "CONSENT_RATELIMIT_CONSENT_PER_SITE": "100000000 per minute",
}
START_TIMEOUT = 60.0
LEDGER_KEY = ROOT / "bench" / "results" / "ledger-key.pem"  # the benches' own signing key, made on first run


def ledger_key() -> Path:
    """The benches' ledger signing key, made if missing."""
    from consent.ledger.keys import generate_pem, write_private

    if not LEDGER_KEY.exists():
        LEDGER_KEY.parent.mkdir(parents=True, exist_ok=True)
        write_private(LEDGER_KEY, generate_pem())
    return LEDGER_KEY


@dataclass
class Server:
    """One gunicorn serving one app on one database."""

    name: str
    port: int
    process_group: int
    count_rows: Callable[[], int]
    runs: list[dict[str, Any]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def migrate(url: str, env: dict[str, str]) -> None:
    """Create the schema with the service's own migrations."""
    subprocess.run(
        [sys.executable, "-c", MIGRATE],
        cwd=ROOT,
        env={**env, "CONSENT_DATABASE_URL": url},
        check=True,
        timeout=120,
    )


@contextlib.contextmanager
def databases(kind: str, workdir: Path, postgres: str) -> Iterator[dict[str, tuple[str, Callable[[], int]]]]:
    """A fresh database per app: (SQLAlchemy URL, row counter); PostgreSQL schemas are dropped afterwards."""
    if kind == "sqlite":
        files = {app: workdir / f"{app}.db" for app in APPS}

        def sqlite_counter(path: Path) -> Callable[[], int]:
            def count() -> int:
                with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
                    return int(connection.execute("SELECT count(*) FROM consent_records").fetchone()[0])

            return count

        try:
            yield {app: (f"sqlite:///{path}", sqlite_counter(path)) for app, path in files.items()}
        finally:
            for path in files.values():
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    tag = uuid.uuid4().hex[:10]
    schemas = {app: f"bench_{tag}_{app}" for app in APPS}
    sqlalchemy_base = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", postgres)
    separator = "&" if "?" in postgres else "?"

    def postgres_counter(schema: str) -> Callable[[], int]:
        def count() -> int:
            with psycopg.connect(postgres, connect_timeout=5) as connection:
                row = connection.execute(f'SELECT count(*) FROM "{schema}".consent_records').fetchone()
                return int(row[0]) if row else 0

        return count

    with psycopg.connect(postgres, autocommit=True, connect_timeout=5) as connection:
        for schema in schemas.values():
            connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield {
            app: (f"{sqlalchemy_base}{separator}options=-csearch_path%3D{schema}", postgres_counter(schema))
            for app, schema in schemas.items()
        }
    finally:
        with psycopg.connect(postgres, autocommit=True, connect_timeout=5) as connection:
            for schema in schemas.values():
                connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], log: Path) -> Iterator[tuple[int, int]]:
    """Serve ``app`` from the project root (so gunicorn.conf.py applies); stop it, whatever happens."""
    port = free_port()
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", APPS[app]],
            cwd=ROOT,
            env={**env, "CONSENT_BIND": f"127.0.0.1:{port}"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_answering(port, process, log)
        yield port, process.pid  # the master leads its own process group
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the master and its workers; SIGKILL if they are not gone in 20 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_until_answering(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}; see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means a worker is up (the bare app has no /healthz)
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer within {START_TIMEOUT:.0f} s; see {log}")


def cpu_seconds(process_group: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == process_group:  # pgrp; utime and stime follow at 11 and 12
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def drive(server: Server, args: argparse.Namespace, seconds: int, prefix: str) -> dict[str, Any]:
    """One wrk run, then the row check: every 2xx stored; nothing stored beyond what was sent."""
    before = server.count_rows()
    cpu_before = cpu_seconds(server.process_group)
    ids = hashlib.sha256(prefix.encode()).hexdigest()[:8]  # the first group of the run's event ids (UUIDs)
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(SCRIPT), f"http://127.0.0.1:{server.port}{PATH}", "--", ids,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    match = re.search(r"^wrk-summary (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"no summary from wrk:\n{output}")
    run = json.loads(match.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    run["non_2xx"] = max(run["status"], int(non_2xx.group(1)) if non_2xx else 0)
    run["ok"] = run["requests"] - run["non_2xx"]
    run["errors"] = run["non_2xx"] + sum(run[kind] for kind in ("connect", "read", "write", "timeout"))
    run["rps"] = run["requests"] / (run["duration_us"] / 1e6)
    run["rows"] = settled_count(server.count_rows) - before
    # Server CPU per request barely depends on other work on the machine, unlike req/s.
    run["cpu_ms"] = (cpu_seconds(server.process_group) - cpu_before) * 1000 / max(run["requests"], 1)
    # Requests still in flight when wrk stopped may be stored without their answer being seen.
    run["unanswered"] = run["issued"] - run["requests"]
    run["lost"] = max(0, run["ok"] - run["rows"])
    run["excess"] = max(0, run["rows"] - run["ok"] - run["unanswered"])
    # The 1-minute load average, this benchmark included: compared with a quiet run's,
    # it shows when other work on a shared machine skewed a run.
    run["load"] = os.getloadavg()[0]
    return run


def settled_count(count_rows: Callable[[], int]) -> int:
    """The row count once the last in-flight requests are committed (at most 10 s)."""
    last = count_rows()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = count_rows()
        if now == last:
            return now
        last = now
    return last


def describe(run: dict[str, Any]) -> str:
    return (
        f"{run['rps']:8.0f} req/s  p50 {run['p50_us'] / 1000:6.1f} ms  p99 {run['p99_us'] / 1000:6.1f} ms  "
        f"cpu {run['cpu_ms']:.2f} ms/req  "
        f"non-2xx {run['non_2xx']}  errors {run['errors']}  2xx {run['ok']}  rows {run['rows']}  lost {run['lost']}  "
        f"load {run['load']:.1f}"
    )


def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start both apps on fresh databases of ``kind`` and drive them interleaved."""
    base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    signing = {"CONSENT_LEDGER_KEY_FILE": str(ledger_key())}
    bare = base_env if args.bare_core else {**base_env, "BENCH_BARE_ORM": "1"}
    envs = {"service": {**base_env, **SERVICE_ENV, **signing, **dict(args.env)}, "bare": bare}
    with databases(kind, workdir, args.postgres) as urls, contextlib.ExitStack() as stack:
        servers = []
        for app, (url, count_rows) in urls.items():
            # Both tables come from the service's migrations, which need its settings.
            migrate(url, envs["service"] if app == "service" else {**base_env, **SERVICE_ENV, **signing})
            env = {**envs[app], "CONSENT_DATABASE_URL": url, "BENCH_DATABASE_URL": url}
            port, process_group = stack.enter_context(gunicorn(app, env, workdir / f"{kind}-{app}.log"))
            servers.append(Server(app, port, process_group, count_rows))
        for server in servers:
            warm = drive(server, args, args.warmup, f"warm-{server.name}")
            print(f"{kind:10} {server.name:7} warm-up {describe(warm)}", flush=True)
            server.runs.append({**warm, "warmup": True})
        for number in range(1, args.runs + 1):
            for server in servers:
                run = drive(server, args, args.duration, f"run{number}-{server.name}")
                print(f"{kind:10} {server.name:7} run {number}  {describe(run)}", flush=True)
                server.runs.append(run)
    summary: dict[str, Any] = {}
    for server in servers:
        measured = [run for run in server.runs if not run.get("warmup")]
        summary[server.name] = {
            "rps": statistics.median(run["rps"] for run in measured),
            "p50_ms": statistics.median(run["p50_us"] for run in measured) / 1000,
            "p99_ms": statistics.median(run["p99_us"] for run in measured) / 1000,
            "cpu_ms": statistics.median(run["cpu_ms"] for run in measured),
            "errors": sum(run["errors"] for run in server.runs),
            "lost": sum(run["lost"] for run in server.runs),
            "excess": sum(run["excess"] for run in server.runs),
            "runs": server.runs,
        }
    summary["ratio"] = summary["service"]["rps"] / summary["bare"]["rps"]
    summary["cpu_ratio"] = summary["bare"]["cpu_ms"] / summary["service"]["cpu_ms"]
    # Each service run beside the bare run that followed it: load that drifts during the bench cancels out.
    paired = zip(summary["service"]["runs"], summary["bare"]["runs"], strict=True)
    summary["run_ratio"] = statistics.median(s["rps"] / b["rps"] for s, b in paired if not s.get("warmup"))
    summary["baseline"] = "core" if args.bare_core else "orm"
    return summary


def report(results: dict[str, dict[str, Any]]) -> list[str]:
    """Print the medians; return the reasons for failing (none: the budget is met)."""
    print(
        f"\n{'database':10} {'app':7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10} "
        f"{'errors':>6} {'lost':>5}  ratio (cpu)  run ratio"
    )
    failures = []
    for kind, summary in results.items():
        for app in APPS:
            row = summary[app]
            ratio = (
                f"{summary['ratio']:.2f} ({summary['cpu_ratio']:.2f})  {summary['run_ratio']:9.2f}"
                if app == "service"
                else ""
            )
            print(
                f"{kind:10} {app:7} {row['rps']:8.0f} {row['p50_ms']:7.1f} {row['p99_ms']:7.1f} {row['cpu_ms']:10.2f} "
                f"{row['errors']:6d} {row['lost']:5d}  {ratio}"
            )
            if row["errors"]:
                failures.append(f"{kind} {app}: {row['errors']} requests failed")
            if row["lost"] or row["excess"]:
                failures.append(f"{kind} {app}: {row['lost']} records lost, {row['excess']} unexplained rows")
        if summary["baseline"] == "orm" and summary["run_ratio"] < BUDGET:
            failures.append(f"{kind}: service/bare {summary['run_ratio']:.2f} is under the budget {BUDGET:.2f}")
    return failures


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per app and database (default 3)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--env", type=key_value, action="append", default=[], help="KEY=VALUE for the service only")
    parser.add_argument(
        "--postgres", default=os.environ.get("CONSENT_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
    )
    parser.add_argument(
        "--bare-core",
        action="store_true",
        help="the bare app inserts with one Core INSERT, not Flask-SQLAlchemy's session (no budget applies)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unreported warm-up per app (default 2)")
    args = parser.parse_args()
    args.databases = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown or not args.databases or args.runs < 1 or args.duration < 1:
        parser.error("--databases takes sqlite and/or postgresql; --runs and --duration must be positive")
    return args


def main() -> int:
    args = parse_args()
    # A plain SIGTERM must still stop every server this script started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"{os.cpu_count()} cores; wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"{args.runs} runs; service env {dict(args.env) or '-'}; logs in {workdir}",
        flush=True,
    )
    results = {kind: bench_database(kind, args, workdir) for kind in args.databases}
    (workdir / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    failures = report(results)
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
