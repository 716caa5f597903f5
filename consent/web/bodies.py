"""Request bodies as the API reads them: JSON objects in UTF-8, strictly, within the size limit."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from consent.web.errors import ApiError

JSON_TYPES = ("application/json", "text/plain")


class DuplicateKey(ValueError):
    """A JSON object names one key twice: which value was meant is anyone's guess."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook for ``json.loads`` that refuses duplicate keys instead of keeping the last."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for at, key in enumerate(keys) if key in keys[:at])
        raise DuplicateKey(f"duplicate key {twice!r}")
    return obj


def not_a_number(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON number")


# Made once: json.loads with options builds a new decoder on every call.
DECODER = json.JSONDecoder(object_pairs_hook=unique_keys, parse_constant=not_a_number)


def body_bytes() -> bytes:
    """The body, refused with 413 past MAX_CONTENT_LENGTH whether or not it declared a length.

    werkzeug refuses a Content-Length over the limit; a chunked or streamed body
    it reads up to the limit and hands over cut short. Such a body is read here
    one byte past the limit instead, so that too long is told from just long enough.
    """
    limit = request.max_content_length
    if limit is None or request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return request.get_data(cache=False)
    stream, parts, size = request.environ["wsgi.input"], [], 0
    while size <= limit:
        part = stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise ApiError(413, f"the body is over {limit} bytes")
    return b"".join(parts)


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, sent as application/json or text/plain (sendBeacon).

    UTF-8 only (RFC 8259): json.loads would guess UTF-16 and UTF-32 from bytes,
    so the text is decoded first. Duplicate keys, NaN and Infinity are refused;
    so is nesting too deep to parse.
    """
    if request.mimetype not in JSON_TYPES:
        raise ApiError(415, "send the body as application/json or text/plain")
    try:
        body = DECODER.decode(body_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and DuplicateKey are ValueErrors
        raise ApiError(400, f"the body is not valid UTF-8 JSON: {error}") from error
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def load_body(schema: Schema, what: str) -> dict[str, Any]:
    """The body as ``schema`` loads it; 422 naming each invalid field of ``what``."""
    try:
        loaded: dict[str, Any] = schema.load(json_body())
    except ValidationError as error:
        raise ApiError(422, f"invalid {what}", error.normalized_messages()) from error
    return loaded
