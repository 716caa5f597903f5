"""A bounded load of consent POSTs from client threads, remembering what each event_id was answered."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

ORIGIN = "http://localhost:8000"


@dataclass(frozen=True)
class Answer:
    """What one POST got back; status 0 means no HTTP answer at all (refused, reset, timed out)."""

    event_id: str
    base: str
    status: int
    body: str
    retry_after: str | None
    sent_at: float
    answered_at: float

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300


def consent_payload(event_id: str) -> bytes:
    """A visitor's first choice, as the banner sends it."""
    return json.dumps(
        {
            "event_id": event_id,
            "action": "custom",
            "choices": {"functional": True, "analytics": False, "advertising": False},
            "revision": 1,
            "language": "en",
            "page_url": "http://localhost:8000/shop?item=42",
            "gpc": False,
            "dnt": False,
        }
    ).encode()


def post_consent(base: str, event_id: str, timeout: float = 15.0) -> Answer:
    """POST one choice for the demo site as ``text/plain`` from an allowed origin."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=timeout)
    sent_at = time.monotonic()
    try:
        connection.request(
            "POST",
            "/api/v1/sites/demo/consents",
            body=consent_payload(event_id),
            headers={"Content-Type": "text/plain", "Origin": ORIGIN},
        )
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
        status, retry_after = response.status, response.getheader("Retry-After")
    except (OSError, http.client.HTTPException) as error:
        status, body, retry_after = 0, f"{type(error).__name__}: {error}", None
    finally:
        connection.close()
    return Answer(event_id, base, status, body, retry_after, sent_at, time.monotonic())


class PostLoad:
    """``clients`` threads posting new event_ids to ``bases`` in turn until stopped, done or out of time."""

    def __init__(
        self,
        bases: list[str],
        clients: int,
        max_seconds: float,
        posts_per_client: int | None = None,
        pause_after_failure: float = 0.02,
    ) -> None:
        self.bases = bases
        self.posts_per_client = posts_per_client
        self.pause_after_failure = pause_after_failure
        self.deadline = time.monotonic() + max_seconds
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def __enter__(self) -> PostLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _client(self, number: int) -> None:
        sent = 0
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            if self.posts_per_client is not None and sent >= self.posts_per_client:
                return
            answer = post_consent(self.bases[(number + sent) % len(self.bases)], str(uuid.uuid4()))
            sent += 1
            with self._lock:
                self.answers.append(answer)
            if not answer.acknowledged:
                # A real banner waits before it retries; without a pause a refused
                # database turns the clients into a busy loop.
                time.sleep(self.pause_after_failure)

    def wait(self) -> None:
        """Wait until every client has sent its posts (or the time bound has passed)."""
        for thread in self._threads:
            thread.join(timeout=max(0.0, self.deadline - time.monotonic()) + 20)

    def stop(self) -> None:
        """Let every client finish the request it is in, then end."""
        self._stop.set()
        self.wait()

    def snapshot(self) -> list[Answer]:
        """The answers received so far."""
        with self._lock:
            return list(self.answers)
