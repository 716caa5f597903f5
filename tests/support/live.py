"""The service as operators run it: ``gunicorn wsgi:app`` on a free loopback port, and the log it writes.

Every server started here is stopped by the test that started it; every wait
is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import pytest
from flask_migrate import upgrade
from gunicorn.config import KNOWN_SETTINGS
from sqlalchemy import select

from consent import create_app
from consent.store.models import ConsentRecord, db
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "live-test-secret-key"
ADMIN_TOKEN = "live-test-admin-token"
# gunicorn 25.1+ opens a control socket at one path per user by default; instances
# started side by side would take it from one another.
NO_CONTROL_SOCKET = ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


def _app_config(database_url: str) -> dict[str, object]:
    return {
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "ADMIN_TOKENS": ADMIN_TOKEN,
        "INVENTORY": str(ROOT / "cookies.yaml"),
        # The run's key (tests/conftest.py), which the services started here inherit too.
        "LEDGER_KEY_FILE": os.environ["CONSENT_LEDGER_KEY_FILE"],
    }


def wait_until_ready(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until ``base/readyz`` answers 200; fail with what the server wrote if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, written = process.communicate(timeout=10)
            raise AssertionError(f"the server at {base} was not ready (exit {process.returncode}):\n{written}")
        time.sleep(0.2)


def migrate(database_url: str) -> None:
    """Create the schema in an empty database, as ``consent db upgrade`` does."""
    app = create_app(_app_config(database_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def stored_event_ids(database_url: str) -> Counter[str]:
    """How often each event_id of the demo site is in the consent log."""
    app = create_app(_app_config(database_url))
    with app.app_context():
        rows = db.session.scalars(select(ConsentRecord.event_id).where(ConsentRecord.site == "demo")).all()
        db.session.remove()
        db.engine.dispose()
    return Counter(rows)


class LiveService:
    """``gunicorn wsgi:app`` from the project root with the given database and number of workers.

    ``env`` sets or overrides ``CONSENT_*`` variables (an inventory, rate limits
    back on, an access log); the migrations are the caller's (``migrate``).
    """

    def __init__(self, database_url: str, workers: int = 4, *, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        # A file, not a pipe: a worker logging many warnings must never block on a full pipe.
        # Append mode: the workers keep appending while this process seeks to read it.
        self._stderr = tempfile.TemporaryFile(mode="a+")
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CONSENT_BIND": f"127.0.0.1:{self.port}",
            "CONSENT_WORKERS": str(workers),
            "CONSENT_DATABASE_URL": database_url,
            "CONSENT_SECRET_KEY": SECRET_KEY,
            "CONSENT_ADMIN_TOKENS": ADMIN_TOKEN,
            "CONSENT_INVENTORY": str(ROOT / "cookies.yaml"),
            "CONSENT_ACCESS_LOG": "",
            # Thousands of posts from one address in seconds are the point here, not abuse.
            "CONSENT_RATELIMIT_ENABLED": "false",
            **(env or {}),
        }
        self.process: subprocess.Popen[str] | None = None
        self._final_stderr: str | None = None

    def __enter__(self) -> LiveService:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *NO_CONTROL_SOCKET, "wsgi:app"],
            cwd=ROOT,
            env=self.env,
            stderr=self._stderr,
            text=True,
        )
        try:
            self._wait_until_ready(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def command(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """A ``consent`` command run with this service's environment (``admin create``, say)."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT, env=self.env, input=stdin, text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=2) as response:
                    if response.status == 200 and len(self.worker_pids()) == self.workers:
                        return
            except OSError:
                pass
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited during start-up:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gunicorn was not ready within {timeout} s:\n{self.stderr()}")
            time.sleep(0.1)

    def worker_pids(self) -> set[int]:
        """The pids of the master's worker processes, as the kernel lists its children."""
        assert self.process is not None
        children: set[int] = set()
        for listing in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            try:
                children.update(int(pid) for pid in listing.read_text().split())
            except OSError:
                continue
        return children

    def wait_for_workers(self, timeout: float, exclude: set[int]) -> set[int]:
        """Wait until the master runs its full number of workers, none of them in ``exclude``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == self.workers and not pids & exclude:
                return pids
            time.sleep(0.05)
        raise TimeoutError(f"gunicorn did not replace workers {exclude} within {timeout} s:\n{self.stderr()}")

    def stop(self) -> None:
        """Stop gunicorn gracefully, or kill it after a bound; keep what it wrote."""
        if self._final_stderr is not None:
            return
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._final_stderr = self.stderr()
        self._stderr.close()

    def stderr(self) -> str:
        """Everything gunicorn and its workers wrote to stderr so far."""
        if self._final_stderr is not None:
            return self._final_stderr
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()


def missing_service(reason: str) -> NoReturn:
    """Skip a test whose service or program is missing here; under ``CI=true`` fail it instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def postgresql_selected() -> bool:
    """Whether this run includes PostgreSQL (``CONSENT_TEST_DATABASES``, as for the rest of the suite)."""
    return "postgresql" in os.environ.get("CONSENT_TEST_DATABASES", "sqlite,postgresql").split(",")
