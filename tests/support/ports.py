"""Free loopback ports for the servers the tests start, and the quiet handler their page servers share."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PageHandler(BaseHTTPRequestHandler):
    """A request handler that answers whole text bodies and logs nothing."""

    def send_page(self, status: int, content_type: str, body: str, headers: dict[str, str]) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
