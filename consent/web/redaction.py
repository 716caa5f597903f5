"""What may be logged of a request: consent IDs masked, control characters escaped, addresses cut.

Used by the application's JSON log (``consent.web.request_log``) and by gunicorn's
own log lines (``consent.web.serving``). A consent ID with its receipt opens a
visitor's history, so it never reaches a log in clear; a ``%0a`` in a URL must
not start a forged log line.
"""

from __future__ import annotations

import re

# The segment after /consents/ (a history URL), and any UUID anywhere else.
CONSENT_SEGMENT = re.compile(r"(/consents/)[^/?#\s'\"]+", re.IGNORECASE)
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
CONSENT_ID_MASK = "<consent_id>"
# Anything that could end a log line, a quoted field or an escape: C0, DEL and C1 controls, ", \.
UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')
# Paths also lose other non-ASCII characters (gunicorn hands them over as Latin-1 decoded bytes).
UNSAFE_IN_PATH = re.compile(r'[\x00-\x1f\x7f-\uffff"\\]')
NEEDS_WORK = re.compile(r'[\x00-\x1f\x7f-\uffff"\\]|/consents/|[0-9a-f]{8}-', re.IGNORECASE)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def mask_consent_ids(text: str) -> str:
    """``text`` with history URLs' consent IDs and every other UUID replaced by ``<consent_id>``."""
    return UUID_TEXT.sub(CONSENT_ID_MASK, CONSENT_SEGMENT.sub(r"\1" + CONSENT_ID_MASK, text))


def loggable_path(path: str | None) -> str:
    """A request path as it may be logged: consent IDs masked, anything but printable ASCII escaped."""
    if not path:
        return "-"
    if NEEDS_WORK.search(path) is None:  # the common case costs one search
        return path
    return UNSAFE_IN_PATH.sub(_escaped, mask_consent_ids(path))


def loggable_text(text: str) -> str:
    """A log message that may quote a request: consent IDs masked, control characters escaped."""
    return UNSAFE.sub(_escaped, mask_consent_ids(text))
