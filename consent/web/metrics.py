"""Prometheus metrics, shared across gunicorn workers (prometheus-client multiprocess mode).

``gunicorn.conf.py`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before
the workers start; each worker writes its samples there and ``/metrics`` adds
them up. Without it (a single process) the default registry is served.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from consent.web.auth import require_admin

RECORDS_WRITTEN = Counter("consent_records_written", "Consent records appended to the log", ["site", "action"])
REQUEST_LATENCY = Histogram(
    "consent_request_duration_seconds",
    "Time to answer a request, by route",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
EXPORT_DURATION = Histogram(
    "consent_export_duration_seconds",
    "Time to stream a compliance export",
    ["site", "format"],
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600),
)

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition of every worker's metrics (admin token)."""
    require_admin()
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


# The histogram's child per (route, method, status), looked up once: labels() is not free.
_latency_children: dict[tuple[str, str, int], Any] = {}


def observe_latency(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answer in the latency histogram."""
    key = (route, method, status)
    child = _latency_children.get(key)
    if child is None:
        child = _latency_children[key] = REQUEST_LATENCY.labels(route, method, str(status))
    child.observe(seconds)


def _observe(response: Response) -> Response:
    started = g.get("started")
    if started is not None:
        incoming = request._get_current_object()  # type: ignore[attr-defined]
        rule = incoming.url_rule
        observe_latency(
            rule.rule if rule else "unmatched", incoming.method, response.status_code, time.perf_counter() - started
        )
    return response


def init_app(app: Flask) -> None:
    """Time every request (from ``g.started``, set by consent.web.request_log) and serve ``/metrics``."""
    app.after_request(_observe)
    app.register_blueprint(bp)
