"""Budgets of the proof of consent, each measured side by side in one run, on SQLite and PostgreSQL.

1. Export of N records (default 1 M) as CSV: rows/s against the database's own
   CSV dump (``sqlite3 -csv``, ``psql \\copy``), runs interleaved, medians;
   budget at least 0.9 on SQLite and 0.7 on PostgreSQL. Peak RSS of the export
   process: at most 100 MB. The same export with ``--proof`` beside it: at
   most 20 % slower than without.
2. ``consent verify`` of the same N records, live, and offline of the exported
   file and its proof (``python -m consent.verify``, when it is there): at most
   1.5 times the export's time. ``--skip-verify`` leaves both out.
3. POST throughput with sealing on (the default 10 s, and 1 s) and off
   (``CONSENT_SEAL_INTERVAL=0``), two services on fresh databases driven in
   turn with wrk (the functions of bench/post_throughput.py): sealing may cost at
   most 10 %.

    python3 bench/proof_bench.py [--rows 1000000] [--databases sqlite,postgresql] [--skip-post] [--skip-verify]

Exits 1 if a budget is missed. The generated databases stay in bench/results/
(SQLite) or in schema ``proofbench`` (PostgreSQL; ``--schema``) and are reused with ``--reuse``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import post_throughput as post  # noqa: E402
from proof_data import fill  # noqa: E402

CONSENT = [sys.executable, "-c", "from consent.cli import main; main()"]
DUMP_QUERY = "SELECT * FROM consent_records WHERE site = 'demo' ORDER BY id"
SEAL_SETTINGS = {"off": "0", "on (10 s)": "10", "on (1 s)": "1"}
EXPORT_BUDGET = {"sqlite": 0.9, "postgresql": 0.7}  # at least this share of the dump's rows/s
PROOF_BUDGET = 0.20  # the proof may add at most this to the export's time
VERIFY_BUDGET = 1.5  # verify may take at most this many times the export's time
OFFLINE_VERIFIER = (ROOT / "consent" / "verify" / "__main__.py").exists()


def environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSENT_DATABASE_URL": url,
        "CONSENT_SECRET_KEY": "bench-only-secret-key",
        "CONSENT_ADMIN_TOKENS": "bench-only-admin-token",
        "CONSENT_INVENTORY": str(ROOT / "cookies.yaml"),
        "CONSENT_SEAL_GRACE": "0",
        "CONSENT_LEDGER_KEY_FILE": str(post.ledger_key()),
    }


def timed(command: list[str], env: dict[str, str] | None = None, stdout: Any = subprocess.DEVNULL) -> dict[str, Any]:
    """Run ``command``: its wall time, CPU time (user + system) and peak RSS, from the kernel's accounting."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        errors.seek(0)
        tail = errors.read().decode(errors="replace")[-2000:]
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "returncode": process.returncode,
        "stderr": tail,
    }


@contextlib.contextmanager
def bench_database(kind: str, workdir: Path, postgres: str, schema: str) -> Iterator[tuple[str, list[str]]]:
    """(SQLAlchemy URL, the database's own CSV dump command writing to {out}) for a kept bench database."""
    if kind == "sqlite":
        path = workdir.parent / f"{schema}.db"
        yield f"sqlite:///{path}", ["sqlite3", "-csv", "-header", str(path), DUMP_QUERY]
        return
    separator = "&" if "?" in postgres else "?"
    url = f"{postgres}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    yield url, ["psql", url, "-q", "-c", f"\\copy ({DUMP_QUERY}) TO '{{out}}' CSV HEADER"]


def prepare(url: str, rows: int, reuse: bool) -> None:
    """A migrated database holding ``rows`` sealed records of site demo."""
    env = environment(url)
    subprocess.run([*CONSENT, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    existing = _count(url)
    if reuse and existing == rows:
        return
    if existing:
        raise SystemExit(f"{url} holds {existing} records; drop it (or pass --reuse with --rows {existing})")
    started = time.perf_counter()
    fill(url.replace("postgresql+psycopg://", "postgresql://"), "demo", "0" * 64, rows)
    print(f"  generated {rows} records in {time.perf_counter() - started:.0f} s", flush=True)
    if not url.startswith("sqlite"):
        # As autovacuum would, before anyone exports: the planner needs to know the table's size.
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ANALYZE consent_records")
    started = time.perf_counter()
    subprocess.run([*CONSENT, "seal"], cwd=ROOT, env=env, check=True, capture_output=True)
    print(f"  sealed them in {time.perf_counter() - started:.0f} s", flush=True)


def _count(url: str) -> int:
    if url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            return int(connection.execute("SELECT count(*) FROM consent_records").fetchone()[0])
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM consent_records").fetchone()
        return int(row[0]) if row else 0


def export_and_verify(
    kind: str, url: str, dump: list[str], rows: int, runs: int, workdir: Path, verify: bool
) -> dict[str, Any]:
    """Interleaved runs of the database's dump, ``consent export`` and the export with ``--proof``; then verify."""
    env = environment(url)
    ours, proof = workdir / f"{kind}-export.csv", workdir / f"{kind}-export.proof.json"
    theirs = workdir / f"{kind}-dump.csv"
    export = [*CONSENT, "export", "--site", "demo", "-o", str(ours)]
    result: dict[str, Any] = {"dump": [], "export": [], "export_proof": [], "verify_live": [], "verify_file": []}
    for number in range(1, runs + 1):
        if kind == "sqlite":
            with theirs.open("wb") as out:
                run = timed(dump, stdout=out)
        else:
            run = timed([part.replace("{out}", str(theirs)) for part in dump])
        result["dump"].append(run)
        result["export"].append(timed(export, env))
        result["export_proof"].append(timed([*export, "--proof", str(proof)], env))
        plain, proven = result["export"][-1], result["export_proof"][-1]
        print(f"  run {number}: dump {run['seconds']:.2f} s (cpu {run['cpu']:.2f} s), "
              f"export {plain['seconds']:.2f} s (cpu {plain['cpu']:.2f} s, {plain['rss_mb']:.0f} MB), "
              f"with --proof {proven['seconds']:.2f} s ({proven['rss_mb']:.0f} MB)", flush=True)  # fmt: skip
    result["csv_mb"] = ours.stat().st_size / 1e6
    result["proof_mb"] = proof.stat().st_size / 1e6
    keys = workdir / "keys.json"  # the published key set, as an auditor would fetch it
    if verify:
        shown = subprocess.run([*CONSENT, "keys", "show"], cwd=ROOT, env=env, check=True, capture_output=True)
        keys.write_bytes(shown.stdout)
    for number in range(1, runs + 1) if verify else ():
        result["verify_live"].append(timed([*CONSENT, "verify", "--site", "demo"], env))
        if OFFLINE_VERIFIER:
            offline = [sys.executable, "-m", "consent.verify", str(ours), "--proof", str(proof), "--keys", str(keys)]
            result["verify_file"].append(timed(offline, {**os.environ, "PYTHONPATH": str(ROOT)}))
        print(f"  run {number}: verify live {result['verify_live'][-1]['seconds']:.2f} s"
              + (f", file {result['verify_file'][-1]['seconds']:.2f} s" if OFFLINE_VERIFIER else ""),
              flush=True)  # fmt: skip
    timings = [name for name in result if isinstance(result[name], list) and result[name]]
    for name in timings:
        failed = [run for run in result[name] if run["returncode"] != 0]
        if failed:
            raise SystemExit(f"{kind} {name} failed: {failed[0]['stderr']}")
    summary: dict[str, Any] = {name: statistics.median(run["seconds"] for run in result[name]) for name in timings}
    summary |= {f"{name}_cpu": statistics.median(run["cpu"] for run in result[name]) for name in timings}
    summary |= {"rows": rows, "csv_mb": result["csv_mb"], "proof_mb": result["proof_mb"]}
    summary["export_rss_mb"] = max(run["rss_mb"] for run in result["export"])
    summary["export_proof_rss_mb"] = max(run["rss_mb"] for run in result["export_proof"])
    summary["dump_rss_mb"] = max(run["rss_mb"] for run in result["dump"])
    summary["export_ratio"] = summary["dump"] / summary["export"]  # rows/s ours over theirs
    summary["proof_cost"] = summary["export_proof"] / summary["export"] - 1
    for name in ("verify_live", "verify_file"):
        if name in summary:
            summary[f"{name}_ratio"] = summary[name] / summary["export"]
    ours.unlink(missing_ok=True)
    proof.unlink(missing_ok=True)
    theirs.unlink(missing_ok=True)
    return summary


def post_with_and_without_sealing(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Two-plus services on fresh databases, sealing off and on, driven in turn with wrk."""
    urls, schemas = {}, []
    for name in SEAL_SETTINGS:
        tag = uuid.uuid4().hex[:8]
        if kind == "sqlite":
            urls[name] = (f"sqlite:///{workdir / f'post-{tag}.db'}", workdir / f"post-{tag}.db")
        else:
            schema = f"proofpost_{tag}"
            schemas.append(schema)
            with psycopg.connect(args.postgres, autocommit=True) as connection:
                connection.execute(f'CREATE SCHEMA "{schema}"')
            separator = "&" if "?" in args.postgres else "?"
            urls[name] = (f"{args.postgres}{separator}options=-csearch_path%3D{schema}", schema)
    try:
        with contextlib.ExitStack() as stack:
            servers = []
            for name, (url, where) in urls.items():
                env = {
                    **environment(url),
                    **post.SERVICE_ENV,  # rate limits out of the benchmark's reach, as in post_throughput.py
                    "CONSENT_SEAL_INTERVAL": SEAL_SETTINGS[name],
                    "CONSENT_SEAL_GRACE": "2",
                }
                post.migrate(url, env)
                port, group = stack.enter_context(post.gunicorn("service", env, workdir / f"{kind}-post-{name}.log"))
                servers.append(post.Server(name, port, group, _counter(where, args.postgres)))
            for server in servers:
                post.drive(server, args, args.warmup, f"warm-{server.name}-{uuid.uuid4().hex[:6]}")
            for number in range(1, args.runs + 1):
                for server in servers:
                    run = post.drive(server, args, args.duration, f"r{number}-{uuid.uuid4().hex[:6]}")
                    print(f"  {server.name:10} run {number}  {post.describe(run)}", flush=True)
                    server.runs.append(run)
            checkpoints = {server.name: _sealed(urls[server.name][1], args.postgres) for server in servers}
    finally:
        for schema in schemas:
            with psycopg.connect(args.postgres, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    summary: dict[str, Any] = {
        server.name: {
            "rps": statistics.median(run["rps"] for run in server.runs),
            "p99_ms": statistics.median(run["p99_us"] for run in server.runs) / 1000,
            "errors": sum(run["errors"] for run in server.runs),
            "lost": sum(run["lost"] for run in server.runs),
            "checkpoints": checkpoints[server.name],
        }
        for server in servers
    }
    for name in SEAL_SETTINGS:
        summary[name]["cost"] = 1 - summary[name]["rps"] / summary["off"]["rps"]
    return summary


def _counter(where: Path | str, postgres: str) -> Any:
    def count() -> int:
        if isinstance(where, Path):
            import sqlite3

            with contextlib.closing(sqlite3.connect(where, timeout=30)) as connection:
                return int(connection.execute("SELECT count(*) FROM consent_records").fetchone()[0])
        with psycopg.connect(postgres) as connection:
            row = connection.execute(f'SELECT count(*) FROM "{where}".consent_records').fetchone()
            return int(row[0]) if row else 0

    return count


def _sealed(where: Path | str, postgres: str) -> int:
    """How many records the seals of a POST database hold."""
    query = "SELECT count(*), coalesce(sum(leaf_count), 0) FROM {}ledger_seals"
    if isinstance(where, Path):
        import sqlite3

        with contextlib.closing(sqlite3.connect(where, timeout=30)) as connection:
            return int(connection.execute(query.format("")).fetchone()[1])
    with psycopg.connect(postgres) as connection:
        row = connection.execute(query.format(f'"{where}".')).fetchone()
        return int(row[1]) if row else 0


def report(results: dict[str, Any]) -> list[str]:
    failures = []
    print(f"\n{'database':10} {'rows':>8} {'dump s':>7} {'export s':>8} {'ratio':>6} {'RSS MB':>6} "
          f"{'+proof s':>8} {'cost':>6} {'RSS MB':>6} "
          f"{'verify s':>8} {'/export':>7} {'file s':>7} {'/export':>7}")  # fmt: skip
    for kind, result in results.items():
        proof = result.get("export")
        if not proof:
            continue
        live, offline = proof.get("verify_live"), proof.get("verify_file")
        print(f"{kind:10} {proof['rows']:8d} {proof['dump']:7.2f} {proof['export']:8.2f} "
              f"{proof['export_ratio']:6.2f} {proof['export_rss_mb']:6.0f} {proof['export_proof']:8.2f} "
              f"{proof['proof_cost']:+6.1%} {proof['export_proof_rss_mb']:6.0f} "
              + (f"{live:8.2f} {proof['verify_live_ratio']:7.2f} " if live else f"{'-':>8} {'-':>7} ")
              + (f"{offline:7.2f} {proof['verify_file_ratio']:7.2f}" if offline else f"{'-':>7} {'-':>7}"))  # fmt: skip
        budget = EXPORT_BUDGET.get(kind, 0.9)
        if proof["export_ratio"] < budget:
            failures.append(f"{kind}: export at {proof['export_ratio']:.2f} x the dump's rows/s (budget {budget})")
        for name in ("export_rss_mb", "export_proof_rss_mb"):
            if proof[name] > 100:
                failures.append(f"{kind}: {name} {proof[name]:.0f} MB (budget 100 MB)")
        if proof["proof_cost"] > PROOF_BUDGET:
            failures.append(f"{kind}: --proof adds {proof['proof_cost']:.0%} to the export (budget 20 %)")
        for name in ("verify_live_ratio", "verify_file_ratio"):
            if proof.get(name, 0) > VERIFY_BUDGET:
                failures.append(f"{kind}: {name} {proof[name]:.2f} x the export time (budget {VERIFY_BUDGET})")
    for kind, result in results.items():
        posting = result.get("post")
        if not posting:
            continue
        for name in SEAL_SETTINGS:
            row = posting[name]
            print(f"{kind:10} POST sealing {name:10} {row['rps']:7.0f} req/s  p99 {row['p99_ms']:6.1f} ms  "
                  f"cost {row['cost']:+6.1%}  sealed {row['checkpoints']}  "
                  f"errors {row['errors']}  lost {row['lost']}")  # fmt: skip
            if row["errors"] or row["lost"]:
                failures.append(f"{kind} POST {name}: {row['errors']} errors, {row['lost']} lost")
        if posting["on (10 s)"]["cost"] > 0.10:
            failures.append(
                f"{kind}: sealing costs {posting['on (10 s)']['cost']:.0%} of POST throughput (budget 10 %)"
            )
    return failures


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per measurement (default 3)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--reuse", action="store_true", help="keep the generated databases of an earlier run")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-post", action="store_true")
    parser.add_argument("--skip-verify", action="store_true", help="measure the exports only")
    parser.add_argument("--schema", default="proofbench", help="PostgreSQL schema (and SQLite file name) to keep")
    parser.add_argument("--duration", type=int, default=10, help="seconds per POST run (default 10)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--postgres", default=os.environ.get("CONSENT_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    args.databases = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    return args


def main(args: argparse.Namespace) -> int:
    workdir = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.rows} records; results in {workdir}")
    results: dict[str, Any] = {}
    for kind in args.databases:
        results[kind] = {}
        if not args.skip_export:
            with bench_database(kind, workdir, args.postgres, args.schema) as (url, dump):
                print(f"{kind}: preparing", flush=True)
                prepare(url, args.rows, args.reuse)
                results[kind]["export"] = export_and_verify(
                    kind, url, dump, args.rows, args.runs, workdir, not args.skip_verify
                )
        if not args.skip_post:
            print(f"{kind}: POST with sealing off and on", flush=True)
            results[kind]["post"] = post_with_and_without_sealing(kind, args, workdir)
    (workdir / "proof.json").write_text(json.dumps(results, indent=1, default=str))
    failures = report(results)
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
