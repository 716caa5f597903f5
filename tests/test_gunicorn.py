"""The service under real gunicorn: several workers writing at once lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from consent.store.models import ConsentRecord, db
from tests.support.live import LiveService, wait_until_ready
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


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
    with LiveService(database_url, workers=4) as server, ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(lambda _: post(server.base), range(400)))
    assert statuses == [201] * 400
    assert "database is locked" not in server.stderr()
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
        wait_until_ready(f"http://127.0.0.1:{port}", server)
        assert post(f"http://127.0.0.1:{port}") == 201
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "serving the demo" in errors
