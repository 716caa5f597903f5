"""Budget of the offline verify: checking N exported records (CSV plus proof) takes at most 1.5x the export.

Side by side in one run, interleaved, medians: ``consent export --site demo
-o FILE --proof PROOF`` and ``python -m consent.verify FILE --proof PROOF
--keys KEYS`` (in a clean environment: no CONSENT_* variable, another
directory), on SQLite. The database is bench/results/proofbench.db when it
holds N sealed records already (bench/proof_bench.py makes it), else
bench/results/verifybench.db, filled with bench/proof_data.py and sealed once.

    python3 bench/verify_bench.py [--rows 1000000] [--runs 3]

Exits 1 if the budget is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from proof_data import fill  # noqa: E402

from consent.ledger.keys import generate_pem, write_private  # noqa: E402

CONSENT = [sys.executable, "-c", "from consent.cli import main; main()"]
BUDGET = 1.5
# The same verify reading the file in one process only (no multicore scan): whether the scan still pays.
THOROUGH = (
    "import sys; import consent.verify.scan as scan; scan.SMALLEST = 1 << 62; "
    "from consent.verify.__main__ import main; sys.exit(main())"
)
# Until `consent export --proof` exists, the same proof written with the export's own functions.
PROOF_ONLY = """
import sys
from consent import create_app
from consent.export.proof import export_range, proof_chunks
from consent.store.models import db
app = create_app(routes=False)
with app.app_context(), open(sys.argv[1], "wb") as out:
    for chunk in proof_chunks(db.session, export_range(db.session, "demo", None, None), "csv"):
        out.write(chunk)
"""


def environment(url: str, key: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSENT_DATABASE_URL": url,
        "CONSENT_SECRET_KEY": "bench-only-secret-key",
        "CONSENT_ADMIN_TOKENS": "bench-only-admin-token",
        "CONSENT_INVENTORY": str(ROOT / "cookies.yaml"),
        "CONSENT_LEDGER_KEY_FILE": str(key),
        "CONSENT_SEAL_GRACE": "0",
    }


def timed(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> dict[str, Any]:
    """Wall time, CPU time and peak RSS of ``command``; its exit status and the end of its output."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        output.seek(0)
        tail = output.read().decode(errors="replace")[-1500:]
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "returncode": os.waitstatus_to_exitcode(status),
        "output": tail,
    }


def _count(path: Path) -> int:
    if not path.exists():
        return -1
    with contextlib.closing(sqlite3.connect(path)) as connection:
        try:
            return int(connection.execute("SELECT count(*) FROM consent_records").fetchone()[0])
        except sqlite3.Error:
            return -1


def database(rows: int, key: Path) -> str:
    """The URL of a SQLite database holding ``rows`` sealed records of site demo (reused, or made now)."""
    for path in (RESULTS / "proofbench.db", RESULTS / "verifybench.db"):
        if _count(path) == rows:
            url = f"sqlite:///{path}"
            subprocess.run([*CONSENT, "seal"], cwd=ROOT, env=environment(url, key), check=True, capture_output=True)
            return url
    path = RESULTS / "verifybench.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    env = environment(url, key)
    subprocess.run([*CONSENT, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    started = time.perf_counter()
    fill(url, "demo", "0" * 64, rows)
    print(f"generated {rows} records in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    subprocess.run([*CONSENT, "seal"], cwd=ROOT, env=env, check=True, capture_output=True)
    print(f"sealed them in {time.perf_counter() - started:.0f} s", flush=True)
    return url


def export_command(env: dict[str, str], out: Path, proof: Path) -> list[list[str]]:
    """``consent export --proof`` if this version has it, else the export and then the proof on their own."""
    probe = subprocess.run([*CONSENT, "export", "--help"], cwd=ROOT, env=env, capture_output=True, text=True)
    if "--proof" in probe.stdout:
        return [[*CONSENT, "export", "--site", "demo", "-o", str(out), "--proof", str(proof)]]
    return [[*CONSENT, "export", "--site", "demo", "-o", str(out)], [sys.executable, "-c", PROOF_ONLY, str(proof)]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    key = RESULTS / "verifybench-key.pem"
    if not key.exists():
        write_private(key, generate_pem())
    url = database(arguments.rows, key)
    env = environment(url, key)
    with tempfile.TemporaryDirectory(prefix="verifybench-") as folder:
        work = Path(folder)
        out, proof, keys = work / "export.csv", work / "export.proof.json", work / "keys.json"
        shown = subprocess.run([*CONSENT, "keys", "show"], cwd=ROOT, env=env, check=True, capture_output=True)
        keys.write_bytes(shown.stdout)
        clean = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
        verify = [sys.executable, "-m", "consent.verify", str(out), "--proof", str(proof), "--keys", str(keys)]
        exports: list[float] = []
        verifies: list[dict[str, Any]] = []
        for run in range(arguments.runs):
            seconds = 0.0
            for command in export_command(env, out, proof):
                result = timed(command, env)
                if result["returncode"]:
                    raise SystemExit(f"export failed: {result['output']}")
                seconds += result["seconds"]
            exports.append(seconds)
            result = timed(verify, clean, cwd=work)
            if result["returncode"]:
                raise SystemExit(f"verify failed ({result['returncode']}): {result['output']}")
            verifies.append(result)
            print(
                f"run {run + 1}: export + proof {seconds:.2f} s, verify {result['seconds']:.2f} s "
                f"(cpu {result['cpu']:.2f} s, {result['rss_mb']:.0f} MB)",
                flush=True,
            )
        single = timed([sys.executable, "-c", THOROUGH, *verify[3:]], clean, cwd=work)
        if single["returncode"]:
            raise SystemExit(f"verify (one process) failed: {single['output']}")
        print(f"verify in one process, no scan: {single['seconds']:.2f} s (cpu {single['cpu']:.2f} s)", flush=True)
        size = out.stat().st_size + proof.stat().st_size
    summary = {
        "rows": arguments.rows,
        "export_s": statistics.median(exports),
        "verify_s": statistics.median(result["seconds"] for result in verifies),
        "verify_cpu_s": statistics.median(result["cpu"] for result in verifies),
        "verify_rss_mb": max(result["rss_mb"] for result in verifies),
        "verify_one_process_s": single["seconds"],
        "files_mb": size / 1e6,
    }
    summary["ratio"] = summary["verify_s"] / summary["export_s"]
    print(json.dumps(summary, indent=2))
    print(f"offline verify / export: {summary['ratio']:.2f} (budget at most {BUDGET})")
    if summary["ratio"] > BUDGET:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
