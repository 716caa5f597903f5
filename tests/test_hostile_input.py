"""Hostile and careless input to recording a choice and to the export: refused in the JSON error shape, never a 500.

Every refusal writes nothing; every case runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import io
import json
import socket
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.dashboard.users import create_user
from consent.store.models import db
from tests.support.admin_seed import PASSWORD, csrf_token
from tests.support.consent_log import API_ORIGIN as ORIGIN
from tests.support.consent_log import CONSENTS_URL as URL
from tests.support.consent_log import choice, count, rows
from tests.support.live import LiveService
from tests.support.service_config import ADMIN_TOKEN

LIMIT = 16 * 1024
CODECS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "utf-32-le", "latin-1"]


def body(**changes: Any) -> dict[str, Any]:
    return choice(**{"page_url": "https://shop.example/products/42", "gpc": False, "dnt": False, **changes})


def refused(response: Any, status: int) -> dict[str, Any]:
    """The error document of ``response``, which must have ``status`` and the JSON error shape."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    error = response.json["error"]
    assert set(error) == {"code", "message", "fields"}
    return error


# ---- the body as bytes: size, encoding, nesting, duplicate keys ----


def nested(depth: int) -> bytes:
    return b'{"event_id": "abcdefgh", "choices": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (nested(8000), 400),  # 16 KB, 8,000 levels deep: a RecursionError once
        (b'{"a": ' * 2000 + b"1" + b"}" * 2000, 400),
        (json.dumps(body()).encode("utf-16"), 400),
        (json.dumps(body()).encode("utf-16-le"), 400),
        (json.dumps(body()).encode("utf-32"), 400),
        (json.dumps(body()).encode("utf-32-be"), 400),
        (b"\xef\xbb\xbf" + json.dumps(body()).encode(), 400),  # a UTF-8 byte order mark
        (json.dumps(body()).encode()[:-1] + b', "action": "reject_all"}', 400),  # a duplicate key
        (json.dumps(body()).replace('"analytics": false', '"analytics": false, "analytics": true').encode(), 400),
        (json.dumps(body(revision=1)).replace('"revision": 1', '"revision": NaN').encode(), 400),
        (json.dumps(body(revision=1)).replace('"revision": 1', '"revision": Infinity').encode(), 400),
        (json.dumps(body(revision=1)).replace('"revision": 1', '"revision": ' + "9" * 5000).encode(), 400),
    ],
)
def test_unreadable_bodies_are_400_and_write_nothing(app, client, data, status):
    error = refused(client.post(URL, data=data, content_type="text/plain", headers=ORIGIN), status)
    assert error["code"] == "malformed"
    assert count(app) == 0


def test_a_duplicate_key_is_named(client):
    data = json.dumps(body()).encode()[:-1] + b', "gpc": true}'
    response = client.post(URL, data=data, content_type="application/json", headers=ORIGIN)
    assert "gpc" in refused(response, 400)["message"]


# ---- values: integers, booleans, text ----


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"revision": 2**63}, "revision"),  # SQLite's INTEGER overflows
        ({"revision": 2**31}, "revision"),  # PostgreSQL's INTEGER overflows
        ({"revision": 2**31 + 5}, "revision"),
        ({"revision": -(2**63)}, "revision"),
        ({"revision": True}, "revision"),
        ({"revision": 1.0}, "revision"),
        ({"gpc": 1}, "gpc"),
        ({"dnt": 0}, "dnt"),
        ({"gpc": "true"}, "gpc"),
        ({"gpc": None}, "gpc"),
        ({"choices": {"functional": 1}}, "choices"),
        ({"choices": {"necessary": False}}, "choices"),
        ({"choices": {"necessary": 1}}, "choices"),
        ({"page_url": "https://shop.example/\ud800"}, "page_url"),
        ({"page_url": "https://shop.example/\udfff?x#y"}, "page_url"),
        ({"page_url": "https://shop.example/a\x00b"}, "page_url"),
        ({"page_url": "https://shop.example/a\r\nSet-Cookie: x=y"}, "page_url"),
        ({"page_url": "https://shop.example/\x7f"}, "page_url"),
        ({"page_url": "https://shop.example/\x85"}, "page_url"),
        ({"page_url": "https://[shop.example/"}, "page_url"),  # urlsplit raises ValueError
        ({"page_url": "https://shop.example:99999999/"}, "page_url"),
        ({"page_url": "https://user:password@/"}, "page_url"),
        ({"page_url": "https://shop.example\uff03/"}, "page_url"),  # NFKC turns it into '#': ValueError
        ({"receipt": "\ud800", "consent_id": str(uuid.uuid4())}, "receipt"),
        ({"receipt": "abc\x00", "consent_id": str(uuid.uuid4())}, "receipt"),
        ({"consent_id": str(uuid.uuid4()) + "\n", "receipt": "x"}, "consent_id"),
        ({"language": "en\x00"}, "language"),
        ({"language": "\ud83d"}, "language"),
        ({"action": "custom\n"}, "action"),
        ({"event_id": "abcdefgh\n"}, "event_id"),
    ],
)
def test_out_of_range_and_control_characters_are_422_and_write_nothing(app, client, changes, field):
    # json.dumps writes lone surrogates as \ud800 escapes, as an attacker would.
    error = refused(client.post(URL, data=json.dumps(body(**changes)), content_type="text/plain", headers=ORIGIN), 422)
    assert field in error["fields"], error
    assert count(app) == 0


def test_the_largest_revision_both_databases_store_is_a_valid_number(app, client):
    # In range for the INTEGER column: refused only because it was never served.
    error = refused(client.post(URL, json=body(revision=2**31 - 1), headers=ORIGIN), 422)
    assert "never served" in error["fields"]["revision"][0]


def test_text_that_is_merely_unusual_is_kept(app, client):
    page = "https://shop.example/caf\u00e9/\U0001f36a/\u2028"
    assert client.post(URL, json=body(page_url=page), headers=ORIGIN).status_code == 201
    assert rows(app)[0].page_url == page


# ---- what an action means ----

ALL = {"functional": True, "analytics": True, "advertising": True}
ALL_BUT_ADS = {"functional": True, "analytics": True, "advertising": False}
NONE = {"functional": False, "analytics": False, "advertising": False}


@pytest.mark.parametrize(
    ("changes", "stored"),
    [
        ({"action": "accept_all", "choices": {}}, ALL),
        ({"action": "accept_all", "choices": ALL}, ALL),
        ({"action": "accept_all", "choices": {**ALL, "necessary": True}}, ALL),
        ({"action": "accept_all", "choices": {"analytics": True}}, ALL),
        ({"action": "accept_all", "choices": ALL_BUT_ADS, "gpc": True}, ALL_BUT_ADS),
        ({"action": "accept_all", "choices": ALL_BUT_ADS, "dnt": True}, ALL_BUT_ADS),
        ({"action": "accept_all", "choices": {}, "gpc": True}, ALL_BUT_ADS),
        ({"action": "accept_all", "choices": ALL, "gpc": True}, ALL),  # the visitor's own advertising switch
        ({"action": "reject_all", "choices": {}}, NONE),
        ({"action": "reject_all", "choices": NONE}, NONE),
        ({"action": "withdraw", "choices": {"necessary": True}}, NONE),
        ({"action": "custom", "choices": {}}, NONE),
        ({"action": "custom", "choices": {"analytics": True}}, {**NONE, "analytics": True}),
    ],
)
def test_the_action_decides_what_is_stored(app, client, changes, stored):
    assert client.post(URL, json=body(**changes), headers=ORIGIN).status_code == 201
    [row] = rows(app)
    assert row.necessary is True
    assert {category: getattr(row, category) for category in stored} == stored


@pytest.mark.parametrize(
    "changes",
    [
        {"action": "accept_all", "choices": ALL_BUT_ADS},  # without GPC or DNT, that is a custom choice
        {"action": "accept_all", "choices": {"analytics": False}},
        {"action": "accept_all", "choices": {**ALL, "functional": False}, "gpc": True},
        {"action": "accept_all", "choices": NONE, "dnt": True},
        {"action": "reject_all", "choices": {"advertising": True}},
        {"action": "withdraw", "choices": {"functional": True}},
        {"action": "withdraw", "choices": ALL},
    ],
)
def test_choices_that_contradict_the_action_are_422(app, client, changes):
    assert "choices" in refused(client.post(URL, json=body(**changes), headers=ORIGIN), 422)["fields"]
    assert count(app) == 0


# ---- page_url minimisation ----


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("https://shop.example/products/42?email=a@b.example#reviews", "https://shop.example/products/42"),
        ("https://user:password@shop.example/account", "https://shop.example/account"),
        ("https://user@shop.example:8443/account", "https://shop.example:8443/account"),
        ("https://a%40b:p%3Ass@shop.example/", "https://shop.example/"),
        ("http://shop.example/cart;jsessionid=0123456789ABCDEF", "http://shop.example/cart"),
        ("http://shop.example/a;v=1/b;jsessionid=X/c?q=1", "http://shop.example/a/b/c"),
        ("https://u:p@shop.example/p;sid=1?x=1#f", "https://shop.example/p"),
        ("https://Shop.Example/Case/Kept", "https://Shop.Example/Case/Kept"),
        ("https://shop.example", "https://shop.example"),
        ("https://[2001:db8::1]:8080/x;y", "https://[2001:db8::1]:8080/x"),
    ],
)
def test_page_url_keeps_only_scheme_host_port_and_path(app, client, sent, stored):
    assert client.post(URL, json=body(page_url=sent), headers=ORIGIN).status_code == 201
    assert rows(app)[0].page_url == stored


# ---- bodies without a Content-Length ----


def chunks(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def padded(size: int) -> bytes:
    """A valid record of exactly ``size`` bytes (spaces are JSON whitespace)."""
    data = json.dumps(body()).encode()
    return data[:-1] + b" " * (size - len(data)) + b"}"


def post_stream(client: Any, data: bytes) -> Any:
    """POST ``data`` as a chunked upload reaches the application: no length, a server that ends the stream."""
    return client.post(
        URL,
        input_stream=io.BytesIO(data),
        content_type="text/plain",
        headers={**ORIGIN, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize("size", [LIMIT + 1, LIMIT + 1000, 5 * LIMIT])
def test_streamed_bodies_over_16_kb_are_413(app, client, size):
    assert refused(post_stream(client, padded(size)), 413)["code"] == "too_large"
    assert count(app) == 0


@pytest.mark.parametrize("size", [300, LIMIT])
def test_streamed_bodies_up_to_16_kb_are_read_whole(app, client, size):
    assert post_stream(client, padded(size)).status_code == 201
    assert count(app) == 1


def chunked_request(port: int, data: bytes) -> tuple[int, bytes]:
    """POST ``data`` with ``Transfer-Encoding: chunked`` over a plain socket; the status and body."""
    head = (
        f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {ORIGIN['Origin']}\r\n"
        "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    framed = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in chunks(data)) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + framed)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while part := sock.recv(65536):
            answer += part
    headers, _, content = answer.partition(b"\r\n\r\n")
    return int(headers.split(b" ", 2)[1]), content


def test_gunicorn_refuses_a_chunked_body_over_16_kb(app, database_url):
    with LiveService(database_url, workers=1) as service:
        status, content = chunked_request(service.port, padded(LIMIT + 2000))
        assert status == 413, content
        assert json.loads(content)["error"]["code"] == "too_large"
        assert count(app) == 0
        status, content = chunked_request(service.port, padded(LIMIT))
        assert status == 201, content
        assert count(app) == 1


# ---- the login's next ----


@pytest.mark.parametrize(
    "target",
    [b"/admin\r\nSet-Cookie: a=b", b"/admin/sites/demo\n", b"/admin\x00", b"/admin\xc2\x85", b"/admin\t/x"],
)
def test_login_next_with_control_characters_goes_to_the_dashboard(app, client, target):
    with app.app_context():
        create_user("dpo", PASSWORD)
        db.session.commit()
    next_ = quote_from_bytes(target, safe="")
    assert client.get(f"/admin/login?next={next_}").status_code == 200
    form = f"csrf_token={csrf_token(client)}&username=dpo&password={quote(PASSWORD)}&next={next_}"
    response = client.post("/admin/login", data=form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin"


# ---- property-based: arbitrary JSON, bytes and export parameters ----

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Text as attackers write it: controls, NUL, CR/LF and lone surrogates mixed in (st.text() has no surrogates).
texts = st.text() | st.lists(
    st.text(max_size=5)
    | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
    | st.sampled_from(["\x00", "\r\n", "\x7f", "\x85", "\u2028", "@", ";", "%"]),
    max_size=8,
).map("".join)
# Integers around what the databases store, as well as any.
integers = st.integers() | st.sampled_from([0, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1])
json_values = st.recursive(
    st.none() | st.booleans() | integers | st.floats() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
choices = st.dictionaries(
    st.sampled_from(["necessary", "functional", "analytics", "advertising"]) | texts, json_values
) | st.dictionaries(st.sampled_from(["functional", "analytics", "advertising"]), st.booleans())
# Mostly-valid records with any field replaced, dropped or added: they reach the validation and the database.
field_values = {
    "event_id": st.uuids().map(str) | texts,
    "action": st.sampled_from(["accept_all", "reject_all", "custom", "withdraw"]) | json_values,
    "choices": choices | json_values,
    "revision": st.just(1) | integers | json_values,
    "language": st.sampled_from(["en", "nl-BE"]) | texts | json_values,
    "page_url": st.just("https://shop.example/p") | texts.map(lambda t: "https://shop.example/" + t) | texts,
    "gpc": st.booleans() | json_values,
    "dnt": st.booleans() | json_values,
    "consent_id": st.none() | st.uuids().map(str) | texts,
    "receipt": st.none() | texts,
}
valid = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str),
        "action": st.sampled_from(["accept_all", "reject_all", "custom", "withdraw"]),
        "choices": st.just({}),
        "revision": st.just(1),
        "page_url": st.just("https://shop.example/p"),
    },
    optional={"gpc": st.booleans(), "dnt": st.booleans(), "language": st.just("en")},
)
# A valid record with one to three fields replaced by anything: each reaches validation and the database.
mutated = st.tuples(
    valid,
    st.lists(st.sampled_from(sorted(field_values)), min_size=1, max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: field_values[name] for name in names})
    ),
).map(lambda parts: {**parts[0], **parts[1]})
records = (
    mutated
    | st.fixed_dictionaries(
        {name: field_values[name] for name in ("event_id", "action", "choices", "revision", "page_url")},
        optional={name: field_values[name] for name in ("language", "gpc", "dnt", "consent_id", "receipt")},
    )
    | st.dictionaries(st.sampled_from(sorted(field_values)) | texts, json_values)
)


def post_and_check(app: Any, client: Any, data: bytes, content_type: str) -> None:
    before = count(app)
    response = client.post(URL, data=data, content_type=content_type, headers=ORIGIN)
    written = count(app) - before
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 300:
        assert set(response.json["error"]) == {"code", "message", "fields"}
    assert written == (1 if response.status_code == 201 else 0)


@PROPERTY
@given(record=records, as_text=st.booleans())
def test_any_json_record_is_answered_without_a_server_error_or_a_stray_write(app, client, record, as_text):
    data = json.dumps(record).encode("utf-8", "surrogatepass")  # lone surrogates travel as \ud800 escapes
    post_and_check(app, client, data, "text/plain" if as_text else "application/json")


@PROPERTY
@given(value=json_values)
def test_any_json_document_is_answered_without_a_server_error_or_a_stray_write(app, client, value):
    post_and_check(app, client, json.dumps(value).encode(), "application/json")


@PROPERTY
@given(
    data=st.binary(max_size=2000)
    | st.binary(min_size=LIMIT - 100, max_size=LIMIT + 100)
    | st.builds(nested, st.integers(0, 9000))
    | st.builds(lambda text, codec: json.dumps(body(page_url=text)).encode(codec), texts, st.sampled_from(CODECS))
)
def test_any_bytes_are_answered_without_a_server_error_or_a_stray_write(app, client, data):
    post_and_check(app, client, data, "text/plain")


moments = (
    st.builds(
        lambda d, zone: d.isoformat() + zone,
        st.datetimes() | st.sampled_from([datetime.min, datetime.max]),
        st.sampled_from(["Z", "+05:00", "-23:59", ""]),
    )
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.dates().map(str)
    | st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]{0,15}([+-][0-9:]{1,8}|Z)?)?\Z")
    | st.text(max_size=40)
    | st.binary(max_size=40)
)


@pytest.mark.parametrize(
    "since",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2026-13-01", "2026-01-01T00:00:00+99:00", "\x00"],
)
def test_export_moments_without_a_utc_time_are_422(client, admin_headers, since):
    response = client.get("/api/v1/sites/demo/export", query_string={"since": since}, headers=admin_headers)
    assert "since" in refused(response, 422)["fields"]


def query_value(value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote_from_bytes(raw, safe="")


@PROPERTY
@given(
    fmt=st.sampled_from(["csv", "jsonl", "iso27560"]) | st.text(max_size=12) | st.binary(max_size=12),
    since=st.none() | moments,
    until=st.none() | moments,
)
def test_any_export_parameters_are_answered_without_a_server_error(client, fmt, since, until):
    params = {"format": fmt, "since": since, "until": until}
    query = "&".join(f"{name}={query_value(value)}" for name, value in params.items() if value is not None)
    response = client.get(f"/api/v1/sites/demo/export?{query}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    content = response.get_data()  # the whole stream: an error after the first row would surface here
    assert response.status_code < 500, content[:500]
    if response.status_code != 200:
        assert set(response.json["error"]) == {"code", "message", "fields"}
