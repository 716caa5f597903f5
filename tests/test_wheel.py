"""The package installed the ordinary way: a wheel in a fresh venv, run from a directory outside the checkout.

The venv sees the machine's installed dependencies (``--system-site-packages``)
so that nothing is downloaded; the package itself comes from the wheel alone,
which the test checks by where ``consent`` is imported from.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.live import wait_until_ready
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel built from this checkout; its bin/ folder."""
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(build),
            str(ROOT),
        ],
        check=True,
        timeout=180,
    )
    (wheel,) = build.glob("consent-*.whl")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=180,
    )
    return venv / "bin"


def clean_environment(bin_dir: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("CONSENT_", "PYTHON"))}
    environment["PATH"] = f"{bin_dir}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def test_the_wheel_holds_the_services_files(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import consent.resources as r; print(r.ROOT); print(r.INSTALLED)"],
        cwd=tmp_path,
        env=clean_environment(installed),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    root = Path(where[0])
    assert where[1] == "True" and installed.parent in root.parents, root
    for name in ("static/banner.js", "templates/demo.html", "migrations/env.py", "cookies.yaml", "scan/knowledge.yaml"):
        assert (root / name).is_file(), name
    assert not (root / "static" / "__pycache__").exists()


def test_the_installed_service_serves_the_demo_from_anywhere(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    environment = clean_environment(installed)
    server = subprocess.Popen(
        [str(installed / "consent"), "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base, server)
        with urllib.request.urlopen(f"{base}/demo", timeout=10) as answer:
            assert answer.status == 200 and b"/s/demo/banner.js" in answer.read()
        with urllib.request.urlopen(f"{base}/s/demo/banner.js", timeout=10) as answer:
            assert answer.status == 200 and b'"site":"demo"' in answer.read()
        with urllib.request.urlopen(f"{base}/s/demo/cookies", timeout=10) as answer:
            assert answer.status == 200 and b"Google Analytics" in answer.read()
    finally:
        server.terminate()
        server.communicate(timeout=30)
    # Its database and demo key sit where it ran, not in the installed package.
    assert (tmp_path / "instance" / "consent.db").is_file()
    # And the other commands work on that demo without CONSENT_DEMO.
    export = subprocess.run(
        [str(installed / "consent"), "export", "--site", "demo"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 0, export.stderr
    assert export.stdout.lstrip("\ufeff").startswith("record_id,")


def test_without_a_served_demo_the_commands_still_want_secrets(installed: Path, tmp_path: Path) -> None:
    export = subprocess.run(
        [str(installed / "consent"), "export", "--site", "demo"],
        cwd=tmp_path,
        env=clean_environment(installed),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 1
    assert "refusing to start outside the demo" in export.stderr and "Traceback" not in export.stderr
