"""The service's Flask class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


class ServiceFlask(Flask):
    """Flask, deciding once per function whether it must be wrapped to run async.

    Flask asks ``ensure_sync`` of the view and of every request hook on every
    request, and each answer inspects the function's code flags (eight times per
    recorded choice). The functions are the registered ones, so the answers are
    kept, a few dozen at most.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        sync = self._sync_functions.get(func)
        if sync is None:
            sync = self._sync_functions[func] = super().ensure_sync(func)
        return sync
