"""Answering ``GET /s/<site>/banner.js`` again without Flask, as Flask answered it the first time.

Every page view of every client site asks for the banner script, and Flask's
machinery around the view (request context, session, URL adapter, seven
hooks, header objects) cost some 60 % of each answer. The script and its
headers only change when the inventory does, which restarts the workers, so
this WSGI middleware keeps the finished answer (status, every header the view
and the hooks set, body) that the full Flask path gave for the same request
headers, and sends it again. Per request it still does what the hooks do that
varies: a request id (``X-Request-ID``, as consent.web.request_log) and the
latency metric (consent.web.metrics). Anything it does not recognise exactly
(another method, a condition other than the script's one ETag, an answer that
set a cookie, a site whose version is not yet stored) goes through Flask.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from consent.web.metrics import observe_latency
from consent.web.request_log import request_id

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ROUTE = "/s/<site>/banner.js"
SUFFIX = "/banner.js"
# Set by the view on an answer that may be replayed (its inventory version is stored, and
# it does not depend on the client address, as one resolved by GeoIP does).
REPLAYABLE = "consent.embed.banner.replayable"
# Everything in a request that the view or a hook reads to build the answer (ProxyFix
# included), apart from If-None-Match, which picks the 200 or the 304.
KEY_HEADERS = (
    "PATH_INFO", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "HTTP_ACCEPT_ENCODING",
    "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX",
    "SCRIPT_NAME",
)  # fmt: skip
# Answers kept per process: a few Accept-Encoding variants per site and address.
LIMIT = 256


@dataclass(frozen=True)
class Answer:
    """A finished answer: status line, headers without the request id, body."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


class BannerReplay:
    """WSGI middleware in front of the Flask app: replays banner.js answers for identical requests."""

    def __init__(self, app: WSGIApp, region_keys: tuple[str, ...] = ()) -> None:
        self.app = app
        # The trusted region headers and Sec-GPC change the script's configuration.
        self.key_headers = (*KEY_HEADERS, *region_keys, "HTTP_SEC_GPC")
        # (request key, If-None-Match or None) -> answer; the script's ETag per request key.
        self.answers: dict[tuple[tuple[Any, ...], str | None], Answer] = {}
        self.etags: dict[tuple[Any, ...], str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or not environ.get("PATH_INFO", "").endswith(SUFFIX):
            return self.app(environ, start_response)
        started = time.perf_counter()
        key = tuple(environ.get(name) for name in self.key_headers)
        condition = environ.get("HTTP_IF_NONE_MATCH")
        # Only no condition, or exactly the ETag this script is sent with, is replayed.
        known = self.etags.get(key)
        if condition is not None and known is not None and condition != known:
            return self._through_flask(environ, start_response, None)
        answer = self.answers.get((key, condition))
        if answer is None:
            return self._through_flask(environ, start_response, (key, condition))
        start_response(answer.status, [*answer.headers, ("X-Request-ID", request_id(environ.get("HTTP_X_REQUEST_ID")))])
        observe_latency(ROUTE, "GET", int(answer.status[:3]), time.perf_counter() - started)
        return [answer.body]

    def _through_flask(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        slot: tuple[tuple[Any, ...], str | None] | None,
    ) -> Iterable[bytes]:
        """The full Flask answer; kept for replay in ``slot`` when it qualifies."""
        if slot is None:
            return self.app(environ, start_response)
        seen: list[Any] = []

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        chunks = self.app(environ, remember)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, headers = seen
        key, condition = slot
        kept = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
        etag = next((value for name, value in kept if name.lower() == "etag"), None)
        # A 200 to an unconditional request, or a 304 to exactly its ETag; never one that sets a cookie.
        expected = "200" if condition is None else "304"
        if (
            environ.get(REPLAYABLE)
            and status[:3] == expected
            and etag is not None
            and condition in (None, etag)
            and not any(name.lower() == "set-cookie" for name, _ in kept)
        ):
            if len(self.answers) >= LIMIT:
                self.answers.clear()
                self.etags.clear()
            self.answers[(key, condition)] = Answer(status, kept, body)
            self.etags[key] = etag
        return [body]
