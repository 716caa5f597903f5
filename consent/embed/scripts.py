"""Serving a script that client pages embed: built once with its data inside, gzip, strong ETags, any origin.

``banner.js`` and ``declaration.js`` are both a source file with a site's data
put in, answered to any page, cached by browsers for five minutes and then
revalidated with their ETag.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

from flask import Response, request

# Browsers keep the script five minutes, then revalidate with its ETag: a new
# revision reaches every visitor within minutes, and most page views cost nothing.
CACHE_CONTROL = "public, max-age=300"


@dataclass(frozen=True)
class BuiltScript:
    """One script, plain and gzipped, each with its strong ETag."""

    plain: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, plain: bytes) -> BuiltScript:
        return cls(plain, gzip.compress(plain, compresslevel=9, mtime=0), hashlib.sha256(plain).hexdigest()[:32])

    def representation(self, accepts_gzip: bool) -> tuple[bytes, str]:
        """The body and ETag of the variant to send."""
        if accepts_gzip:
            return self.gzipped, self.etag + "-gz"
        return self.plain, self.etag


def script_response(script: BuiltScript) -> Response:
    """The script for this request: gzip if accepted, 304 if the browser has it, public and cross-origin."""
    body, etag = script.representation(request.accept_encodings["gzip"] > 0)
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(body, mimetype="text/javascript")
        if body is script.gzipped:
            response.headers["Content-Encoding"] = "gzip"
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Any page may load it, also with crossorigin/SRI or under Cross-Origin-Embedder-Policy.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.vary.add("Accept-Encoding")
    return response
