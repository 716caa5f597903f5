"""Rate limits: per client network and per site on the endpoints browsers post to.

Counting is done by the ``limits`` library (its storages and strategies); this
module only ties it to Flask: which limit applies to a view, whom a request
counts against, and the 429 answer. Counters live in process memory by
default, or in Redis when ``CONSENT_RATELIMIT_STORAGE_URL`` is set, so that
every instance shares them. If the storage fails, the request passes.

The service once used Flask-Limiter for this; its generic machinery (limit
resolution, exemption scopes, header injection) cost about 0.8 ms of CPU on
every recorded consent, half the cost of recording it. Two counter hits cost
some 15 microseconds.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from flask import Flask, current_app, request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import STRATEGIES, RateLimiter
from werkzeug.exceptions import TooManyRequests

from consent.log.recording import truncate_ip
from consent.web.addresses import network_part, parse_address

View = TypeVar("View", bound=Callable[..., Any])
# A rule: the configuration key holding the limit ("600 per minute") and whom a request counts against.
Rule = tuple[str, Callable[[], str]]
EXTENSION = "consent.web.limits"


def client_network() -> str:
    """The key for per-client limits: the truncated address, the same the log keeps.

    A value that is no address (a proxy that forwards ``unknown`` or nothing)
    names no client: such a request gets a bucket of its own, so that it never
    shares one with other clients (the per-site limits still count it).
    """
    return truncate_ip(request.remote_addr) or f"unparsed:{secrets.token_hex(8)}"


def client_address() -> str:
    """The key for limits on one client: its address (IPv6: its /64, what one host gets), hashed.

    Unlike ``client_network`` it tells apart the clients of one office or
    carrier network. The hash keeps addresses out of the counter storage.
    """
    ip = parse_address(request.remote_addr)
    if ip is None:
        return f"unparsed:{secrets.token_hex(8)}"
    key = str(current_app.secret_key or "").encode()
    return hmac.new(key, network_part(ip, 32, 64).encode(), hashlib.sha256).hexdigest()[:24]


def site_key() -> str:
    """The key for per-site limits."""
    return f"site:{(request.view_args or {}).get('site', '')}"


class SweptMemoryStorage(MemoryStorage):
    """The library's in-process storage, without a new thread every 10 ms.

    ``MemoryStorage`` drops expired counters from a ``threading.Timer`` that it
    starts again on the first hit after each run: under load, a thread start
    every few requests. Expired counters are also dropped whenever they are
    read, so sweeping the others inline once a second bounds memory just the same.
    """

    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, **options: Any) -> None:
        super().__init__(uri, **options)
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    # Replaces MemoryStorage's private timer start (its name as Python mangles it).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def make_storage(url: str) -> Storage:
    """The storage behind ``CONSENT_RATELIMIT_STORAGE_URL``."""
    if url.startswith("memory://"):
        return SweptMemoryStorage(url)
    storage = storage_from_string(url)
    if not isinstance(storage, Storage):
        raise ValueError(f"CONSENT_RATELIMIT_STORAGE_URL: {url.split(':', 1)[0]} is an asynchronous storage")
    return storage


class RateLimits:
    """One app's counters: a ``limits`` strategy over the configured storage."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.enabled = bool(config["RATELIMIT_ENABLED"])
        self.prefix = str(config["RATELIMIT_KEY_PREFIX"])
        self.strategy: RateLimiter = STRATEGIES[config["RATELIMIT_STRATEGY"]](
            make_storage(str(config["RATELIMIT_STORAGE_URL"]))
        )
        self._parsed: dict[str, RateLimitItem] = {}
        self._logger = app.logger

    def item(self, text: str) -> RateLimitItem:
        """The parsed limit, parsed once."""
        if text not in self._parsed:
            self._parsed[text] = parse(text)
        return self._parsed[text]

    def refuse_if_reached(self, rules: tuple[Rule, ...]) -> None:
        """429 with ``Retry-After`` if any rule's limit is already reached; counts nothing."""
        self._enforce(rules, counting=False)

    def count(self, rules: tuple[Rule, ...]) -> None:
        """Count one event under each rule, without refusing anything."""
        for setting, key_of in rules:
            try:
                self.strategy.hit(self.item(str(current_app.config[setting])), self.prefix, setting, key_of())
            except Exception as error:  # noqa: BLE001 - any storage failure lets the request pass
                self._logger.warning("rate limit storage unavailable: %s", type(error).__name__)
                return

    def _refuse(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> NoReturn:
        reset = self.strategy.get_window_stats(item, *identifiers).reset_time
        raise TooManyRequests(str(item), retry_after=max(1, math.ceil(reset - time.time())))

    def hit(self, rules: tuple[Rule, ...]) -> None:
        """Count this request under each rule; 429 with ``Retry-After`` if any limit is reached."""
        self._enforce(rules, counting=True)

    def _enforce(self, rules: tuple[Rule, ...], *, counting: bool) -> None:
        for setting, key_of in rules:
            item = self.item(str(current_app.config[setting]))
            identifiers = (self.prefix, setting, key_of())
            try:
                allowed = (self.strategy.hit if counting else self.strategy.test)(item, *identifiers)
            except Exception as error:  # noqa: BLE001 - any storage failure lets the request pass
                self._logger.warning("rate limit storage unavailable: %s", type(error).__name__)
                return
            if not allowed:
                self._refuse(item, identifiers)


def rate_limits() -> RateLimits | None:
    """This app's counters, or None when rate limits are off."""
    limits: RateLimits = current_app.extensions[EXTENSION]
    return limits if limits.enabled else None


def limited(*rules: Rule, methods: tuple[str, ...] = ("POST",)) -> Callable[[View], View]:
    """Count requests with one of ``methods`` to the decorated view under every rule."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def counted(*args: Any, **kwargs: Any) -> Any:
            limits: RateLimits = current_app.extensions[EXTENSION]
            if limits.enabled and request.method in methods:
                limits.hit(rules)
            return view(*args, **kwargs)

        return counted  # type: ignore[return-value]

    return decorate


def init_app(app: Flask) -> None:
    """Counters for ``app`` in the configured storage (``memory://`` or ``redis://host:port``)."""
    if app.config["RATELIMIT_STRATEGY"] not in STRATEGIES:
        raise ValueError(f"CONSENT_RATELIMIT_STRATEGY must be one of {', '.join(sorted(STRATEGIES))}")
    app.extensions[EXTENSION] = RateLimits(app)
