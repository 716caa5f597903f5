"""A private PostgreSQL cluster in a temporary folder, started by a test so that it can be stopped freely.

PostgreSQL refuses to run as root: when the tests run as root, the cluster's
folder belongs to the ``postgres`` user and every server command runs as that
user (``runuser``, or ``su`` where there is no ``runuser``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.support.ports import free_port

SERVER_USER = os.environ.get("CONSENT_TEST_POSTGRES_USER", "postgres")


def server_bindir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``: ``pg_config --bindir``, else Debian's newest."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(found.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in versions), key=lambda p: int(p.parent.name), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's postgresql package")


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", SERVER_USER, "--", *argv]
    return ["su", "-s", "/bin/sh", SERVER_USER, "-c", shlex.join(argv)]


class PrivateCluster:
    """One PostgreSQL cluster on its own port, listening on 127.0.0.1 and a socket in its own folder."""

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self.folder = Path(tempfile.mkdtemp(prefix="consent-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        try:
            if os.geteuid() == 0:
                account = pwd.getpwnam(SERVER_USER)
                os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections (crash recovery included)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=on -c synchronous_commit=on"
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: ``immediate`` is a crash (no checkpoint), ``fast`` a clean stop."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")

    def create_database(self, name: str) -> str:
        """A new empty database in the cluster; its URL."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        """Stop the server if it runs (by its pid if ``pg_ctl`` cannot) and delete the folder."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            result = subprocess.run(
                _as_server_user([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate"]),
                capture_output=True,
                timeout=60,
                check=False,
            )
            if result.returncode != 0 and pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        argv = _as_server_user([str(self.bindir / program), *arguments])
        result = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr}{result.stdout}\n{log}")
