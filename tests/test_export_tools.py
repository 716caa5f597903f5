"""The CSV export in the tools auditors use: LibreOffice (csv -> xlsx -> csv, still verifies), pandas and DuckDB."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas
import pytest

from consent import create_app
from consent.export.formats import COLUMNS
from consent.store.models import db
from tests.support.export_files import export, insert_records, plain_record, post_choices, seal, stored_ids, write_keys
from tests.support.offline import findings, verify
from tests.support.service_config import app_config, migrate

SOFFICE = os.environ.get("CONSENT_SOFFICE") or shutil.which("soffice") or "/usr/bin/soffice"
# The import dialog's defaults for a UTF-8 file: comma, double quote, UTF-8 (76), from line 1.
CSV_IMPORT = "CSV:44,34,76,1"
CSV_EXPORT = "csv:Text - txt - csv (StarCalc):44,34,76,1"


def soffice(*args: str | Path, cwd: Path) -> None:
    profile = (cwd / "profile").as_uri()  # its own profile: never shared with another run
    command = [SOFFICE, f"-env:UserInstallation={profile}", "--headless", *map(str, args)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One export (SQLite) taken through LibreOffice once: csv -> xlsx -> csv; the files and the log."""
    if not os.path.exists(SOFFICE):
        pytest.fail(f"LibreOffice not found at {SOFFICE}: install Debian's libreoffice-calc-nogui (.ci/install)")
    folder = tmp_path_factory.mktemp("spreadsheet")
    url = f"sqlite:///{folder / 'consent.db'}"
    migrate(url)
    app = create_app(app_config(url, SEAL_INTERVAL=0, SEAL_GRACE=0))
    post_choices(app)
    insert_records(
        app, [plain_record(7, user_agent="line one\nline two", page_url='https://shop.example/?q=1,2;x="y"')]
    )
    seal(app)
    original = folder / "export.csv"
    proof = export(app, original)
    keys = write_keys(app, folder / "keys.json")
    log = stored_ids(app)
    with app.app_context():
        db.engine.dispose()
    soffice(f"--infilter={CSV_IMPORT}", "--convert-to", "xlsx", "--outdir", folder / "xlsx", original, cwd=folder)
    soffice("--convert-to", CSV_EXPORT, "--outdir", folder / "back", folder / "xlsx" / "export.xlsx", cwd=folder)
    yield {"original": original, "saved": folder / "back" / "export.csv", "proof": proof, "keys": keys, "log": log}


def test_an_export_saved_again_by_a_spreadsheet_still_verifies(round_trip):
    saved = round_trip["saved"].read_bytes()
    assert saved != round_trip["original"].read_bytes()
    assert b"TRUE" in saved and not saved.startswith(b"\xef\xbb\xbf") and b"\r\n" not in saved  # what LibreOffice did
    result = verify(round_trip["saved"], "--proof", round_trip["proof"], "--keys", round_trip["keys"])
    assert result.returncode == 0, result.stdout
    assert f"demo: intact; {len(round_trip['log'])} records checked" in result.stdout


@pytest.mark.parametrize(
    ("column", "value"),
    [("analytics", "TRUE"), ("recorded_at", "2026-03-01T12:00:08.007Z"), ("user_agent", "Mozilla/5.1")],
)
def test_a_cell_changed_in_the_spreadsheet_is_named(round_trip, tmp_path, column, value):
    frame = pandas.read_csv(round_trip["saved"], dtype=str, keep_default_na=False)
    row = 2
    if frame.at[row, column] == value:
        value = "FALSE"
    frame.at[row, column] = value
    changed = tmp_path / "changed.csv"
    frame.to_csv(changed, index=False)
    result = verify(changed, "--proof", round_trip["proof"], "--keys", round_trip["keys"])
    assert result.returncode == 1, result.stdout
    assert ("changed", *round_trip["log"][row]) in findings(result.stdout)


def _records(app: Any, tmp_path: Path, count: int) -> Path:
    post_choices(app)
    insert_records(app, [plain_record(number) for number in range(count - 6)])
    seal(app)
    path = tmp_path / "export.csv"
    export(app, path)
    return path


def test_pandas_reads_exactly_the_records_with_their_types(proof_app, tmp_path):
    path = _records(proof_app, tmp_path, 40)
    frame = pandas.read_csv(path, encoding="utf-8-sig", parse_dates=["recorded_at"])
    assert len(frame) == 40
    assert list(frame.columns) == list(COLUMNS)
    for name in ("necessary", "functional", "analytics", "advertising", "gpc", "dnt"):
        assert frame[name].dtype == bool, name
    assert frame["record_id"].dtype == "int64" and frame["revision"].dtype == "int64"
    assert str(frame["recorded_at"].dtype).startswith("datetime64") and str(frame["recorded_at"].dt.tz) == "UTC"
    assert frame["record_id"].is_monotonic_increasing
    assert frame["user_agent"][1] == "''=cmd|' /C calc'!A0"  # with its formula guard, for spreadsheets


def test_duckdb_reads_exactly_the_records_with_their_types(proof_app, tmp_path):
    path = _records(proof_app, tmp_path, 40)
    connection = duckdb.connect()
    relation = connection.sql(f"SELECT * FROM read_csv_auto('{path}')")
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    assert connection.execute(f"SELECT count(*) FROM read_csv_auto('{path}')").fetchone() == (40,)
    assert relation.columns == list(COLUMNS)
    for name in ("necessary", "functional", "analytics", "advertising", "gpc", "dnt"):
        assert types[name] == "BOOLEAN", name
    assert types["record_id"] == "BIGINT" and types["revision"] == "BIGINT"
    assert types["recorded_at"].startswith("TIMESTAMP")
    found = connection.execute(f"SELECT count(*) FROM read_csv_auto('{path}') WHERE necessary").fetchone()
    assert found == (40,)
