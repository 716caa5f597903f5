"""What may be logged of a request path: consent IDs masked, control characters escaped."""

from __future__ import annotations

import json
import uuid

import pytest

from consent.web.redaction import loggable_path, loggable_text

CONSENT_ID = "3f0c9a52-8d1e-4c2b-9a7f-0e1d2c3b4a59"


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/s/demo/banner.js", "/s/demo/banner.js"),
        (f"/api/v1/sites/demo/consents/{CONSENT_ID}", "/api/v1/sites/demo/consents/<consent_id>"),
        ("/api/v1/sites/demo/consents/not-a-uuid", "/api/v1/sites/demo/consents/<consent_id>"),
        (f"/x/{CONSENT_ID.upper()}/y", "/x/<consent_id>/y"),
        ('/a\nb\r"c\\d\x00e\x7f', "/a\\x0ab\\x0d\\x22c\\x5cd\\x00e\\x7f"),
        ("/caf\xc3\xa9", "/caf\\xc3\\xa9"),
        ("", "-"),
    ],
)
def test_loggable_path(path, logged):
    assert loggable_path(path) == logged


def test_loggable_text_keeps_words_and_escapes_line_breaks():
    assert loggable_text(f"Invalid request line: 'GET /consents/{CONSENT_ID}\nX'") == (
        "Invalid request line: 'GET /consents/<consent_id>\\x0aX'"
    )


def test_the_json_log_masks_an_unmatched_path(capfd, make_app):
    app = make_app()  # after capfd, so that its log handler writes where capfd reads
    consent_id = str(uuid.uuid4())
    with app.test_request_context(f"/api/v1/sites/demo/consents/{consent_id}/nothing%0aforged"):
        app.preprocess_request()
        app.logger.warning("something went wrong")
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    entry = next(entry for entry in logged if entry["message"] == "something went wrong")
    assert entry["route"] == "/api/v1/sites/demo/consents/<consent_id>/nothing\\x0aforged"
    assert consent_id not in json.dumps(logged)
