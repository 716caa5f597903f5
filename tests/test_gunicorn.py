"""The service under real gunicorn: several workers writing at once lose nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from consent.store.models import ConsentRecord, db

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(base: str) -> int:
    record = {
        "event_id": str(uuid.uuid4()),
        "action": "accept_all",
        "choices": {"functional": True, "analytics": True, "advertising": True},
        "revision": 1,
        "page_url": "http://localhost:8000/demo",
    }
    request = urllib.request.Request(
        f"{base}/api/v1/sites/demo/consents",
        data=json.dumps(record).encode(),
        headers={"Content-Type": "text/plain", "Origin": "http://localhost:8000"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_four_workers_writing_at_once_lose_nothing(make_app, database_url):
    app = make_app()
    port = free_port()
    env = {
        **os.environ,
        "CONSENT_BIND": f"127.0.0.1:{port}",
        "CONSENT_WORKERS": "4",
        "CONSENT_DATABASE_URL": database_url,
        "CONSENT_SECRET_KEY": "test-secret-key",
        "CONSENT_ADMIN_TOKENS": "test-admin-token",
        "CONSENT_INVENTORY": str(ROOT / "cookies.yaml"),
        "CONSENT_ACCESS_LOG": "",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(lambda _: post(base), range(400)))
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert statuses == [201] * 400
    assert "database is locked" not in errors
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ConsentRecord)) == 400


def test_consent_serve_migrates_and_serves_the_demo(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CONSENT_SECRET_KEY", "CONSENT_ADMIN_TOKENS", "CONSENT_DEMO")
    }
    env.update(
        CONSENT_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        CONSENT_INVENTORY=str(ROOT / "cookies.yaml"),
        CONSENT_WORKERS="1",
        CONSENT_ACCESS_LOG="",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "consent", "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    assert json.load(response) == {"status": "ready"}
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "consent serve did not start"
                time.sleep(0.2)
        assert post(f"http://127.0.0.1:{port}") == 201
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "serving the demo" in errors
