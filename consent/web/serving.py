"""gunicorn's parts of the service: a log without client addresses, and errors in the API's JSON shape.

``gunicorn.conf.py`` names both classes. gunicorn answers some malformed
requests itself, before the application sees them (a request line or header
too large, Content-Length together with Transfer-Encoding, a bad chunk size);
the worker here sends those answers as ``{"error": {"code", "message",
"fields"}}`` with gunicorn's status. The module imports nothing of the
application: gunicorn's master loads it, and the workers it forks must read
the application's code afresh on a reload.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.workers.sync import SyncWorker

from consent.web.addresses import network_part, parse_address
from consent.web.redaction import loggable_path, loggable_text

# gunicorn's warning for a request it refused names the full client address.
INVALID_REQUEST = re.compile(r"^Invalid request from ip=(?P<rest>.*)$", re.DOTALL)
CODES = {400: "malformed", 403: "forbidden", 413: "too_large", 414: "uri_too_long", 417: "expectation_failed"}
CODES |= {431: "headers_too_large", 500: "internal", 501: "not_implemented"}
MESSAGES = {
    400: "the request is not valid HTTP/1.1 (e.g. Content-Length together with Transfer-Encoding)",
    403: "request refused",
    414: "the request line is too long",
    417: "the expectation cannot be met",
    431: "the request headers are too large",
    500: "internal error",
    501: "unsupported transfer coding",
}


def _network_of(text: str) -> str:
    ip = parse_address(text)
    return "-" if ip is None else network_part(ip)


def _rewritten(message: str) -> str:
    found = INVALID_REQUEST.match(message)
    if found is None:
        return loggable_text(message)
    rest = found.group("rest")
    # "ip={address}: {error}": an IPv6 address holds colons, but never ": ".
    address, _, error = rest.partition(": ")
    return f"Invalid request from network {_network_of(address)}: {loggable_text(error)}"


class ServiceLogger(Logger):
    """gunicorn's logger, writing no client address, no query string and no consent ID in clear."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
        """The access log's fields, with the path escaped and masked, and nothing that identifies the client."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        path = loggable_path(environ.get("PATH_INFO"))
        atoms.update(h="-", q="-", f="-", a="-", U=path, r=f"{atoms['m']} {path} {atoms['H']}")
        return {
            name: value
            for name, value in atoms.items()
            # Request headers and environ values can carry addresses (X-Forwarded-For, REMOTE_ADDR).
            if not (name.endswith("}i") or name.endswith("}e"))
        }

    def _message(self, msg: Any, args: tuple[Any, ...]) -> str:
        text = str(msg) % args if args else str(msg)
        return _rewritten(text)

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.error_log.critical(self._message(msg, args), **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.error_log.error(self._message(msg, args), **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.error_log.warning(self._message(msg, args), **kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.error_log.info(self._message(msg, args), **kwargs)

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.error_log.debug(self._message(msg, args), **kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.error_log.exception(self._message(msg, args), **kwargs)


class _Captured:
    """Stands in for the client socket while gunicorn writes its HTML error page, which is kept here instead."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.written = b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def gettimeout(self) -> float:
        return 0.0  # gunicorn then writes with sendall() at once, without switching blocking mode

    def sendall(self, data: bytes) -> None:
        self.written += data


def json_error(status: int, reason: str) -> bytes:
    """A complete HTTP response carrying the API's error shape."""
    body = {"error": {"code": CODES.get(status, "error"), "message": MESSAGES.get(status, reason), "fields": {}}}
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nX-Content-Type-Options: nosniff\r\n\r\n"
    )
    return head.encode("latin-1") + payload


class JsonErrorWorker(SyncWorker):
    """gunicorn's sync worker; the errors it answers itself are JSON in the API's error shape."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Let gunicorn decide the status and log, then send that status with a JSON body."""
        captured = _Captured(client)
        super().handle_error(req, captured, addr, exc)
        status_line = captured.written.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return
        try:
            util.write_nonblock(client, json_error(int(parts[1]), parts[2] if len(parts) > 2 else ""))
        except Exception:  # noqa: BLE001 - the client may be gone, as gunicorn itself allows
            self.log.debug("Failed to send error message.")
