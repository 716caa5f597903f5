"""Under real gunicorn: its own error answers are JSON, and its logs hold no address, no forged line, no consent ID."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.web.serving import ServiceLogger
from tests.support.live import LiveService, migrate


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveService, Path]]:
    folder = tmp_path_factory.mktemp("serving")
    url = f"sqlite:///{folder / 'consent.db'}"
    migrate(url)
    access_log = folder / "access.log"
    live = LiveService(url, workers=1)
    live.env["CONSENT_ACCESS_LOG"] = str(access_log)
    with live:
        yield live, access_log


def raw(service: LiveService, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as it is; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


def wait_for(read, wanted: str, timeout: float = 10) -> str:  # noqa: ANN001 - a function returning text
    deadline = time.monotonic() + timeout
    while wanted not in (text := read()):
        assert time.monotonic() < deadline, f"{wanted!r} never appeared in:\n{text}"
        time.sleep(0.1)
    return text


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"POST /api/v1/sites/demo/consents HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "malformed",
        ),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(120)) + b"\r\n", 431, None),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "malformed"),
        (b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed"),
    ],
)
def test_errors_gunicorn_answers_itself_are_json(service, request_bytes, status, code):
    live, _ = service
    answered, headers, body = raw(live, request_bytes)
    assert answered == status
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "fields"} and error["fields"] == {}
    assert error["code"] == (code or error["code"]) and error["message"]


def test_gunicorn_never_logs_the_client_address(service):
    live, _ = service
    raw(live, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
    logged = wait_for(live.stderr, "Invalid request from network")
    assert "Invalid request from network 127.0.0.0: " in logged
    assert "127.0.0.1" not in logged.replace("http://127.0.0.1", "")


def test_control_characters_in_paths_cannot_forge_access_log_lines(service):
    live, access_log = service
    forged = "/s/demo/x%0a[01/Jan/2030:00:00:00%20+0000]%20%22GET%20/admin%20HTTP/1.1%22%20200%200%200ms%0d%22%5c"
    status, _, _ = raw(live, f"GET {forged} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status == 404
    text = wait_for(lambda: access_log.read_text(encoding="utf-8"), "/s/demo/x")
    line = next(line for line in text.splitlines() if "/s/demo/x" in line)
    assert (
        "/s/demo/x\\x0a[01/Jan/2030:00:00:00 +0000] \\x22GET /admin" in line
        and line.endswith("ms")
        and "\\x0d\\x22\\x5c" in line
    )
    assert not any(line.startswith("[01/Jan/2030") for line in text.splitlines())


def test_consent_ids_in_history_paths_are_not_logged(service):
    live, access_log = service
    consent_id = str(uuid.uuid4())
    for path in (f"/api/v1/sites/demo/consents/{consent_id}", f"/api/v1/sites/demo/consents/{consent_id.upper()}/x"):
        request = urllib.request.Request(f"{live.base}{path}", headers={"X-Consent-Receipt": "nope"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
    text = wait_for(lambda: access_log.read_text(encoding="utf-8"), "/consents/<consent_id>/x")
    assert "GET /api/v1/sites/demo/consents/<consent_id> HTTP/1.1" in text
    assert consent_id not in text.lower() and consent_id not in live.stderr().lower()


def test_access_log_atoms_carry_no_address_query_or_headers():
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    environ = {
        "REQUEST_METHOD": "GET", "RAW_URI": "/x?email=a@b.example", "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/x", "QUERY_STRING": "email=a@b.example", "REMOTE_ADDR": "203.0.113.77",
        "HTTP_USER_AGENT": "UniqueAgent", "HTTP_X_FORWARDED_FOR": "198.51.100.7",
    }  # fmt: skip
    response = SimpleNamespace(status="200 OK", sent=0, headers=[])
    request = SimpleNamespace(headers=[("X-FORWARDED-FOR", "198.51.100.7")])
    atoms = ServiceLogger(Config()).atoms(response, request, environ, timedelta(milliseconds=3))
    text = repr(atoms)
    for personal in ("203.0.113.77", "198.51.100.7", "a@b.example", "UniqueAgent"):
        assert personal not in text
    assert atoms["r"] == "GET /x HTTP/1.1" and atoms["U"] == "/x"
    assert re.fullmatch(r"\[.*\]", atoms["t"])
