"""CORS for a site's declared origins: which Origin may call, the answer's headers, and preflights."""

from __future__ import annotations

from flask import Response, g, request
from flask.typing import ResponseReturnValue

from consent.inventory.sites import Site
from consent.web.auth import is_admin
from consent.web.errors import ApiError

PREFLIGHT_MAX_AGE = "86400"


def allow_origin(site: Site, *, admin_may_omit: bool) -> None:
    """Accept the request's Origin only if the site declares it; remember it for the CORS headers."""
    origin = request.headers.get("Origin")
    if origin is None:
        if admin_may_omit or is_admin():
            return
        raise ApiError(403, "a request without Origin needs an admin token")
    if origin.rstrip("/") not in site.origins:
        raise ApiError(403, f"origin {origin!r} may not use site {site.key!r}")
    g.cors_origin = origin


def cors_headers(response: Response) -> Response:
    headers = response.headers
    origin = g.get("cors_origin")
    if origin:
        headers.add("Access-Control-Allow-Origin", origin)
        headers.add("Access-Control-Expose-Headers", "Retry-After")
    # response.vary parses and rewrites the header; most answers have none yet.
    if any(name.lower() == "vary" for name, _ in headers.items()):
        response.vary.add("Origin")
    else:
        headers.add("Vary", "Origin")
    return response


def preflight(methods: str, headers: str) -> ResponseReturnValue:
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = methods
    response.headers["Access-Control-Allow-Headers"] = headers
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response
