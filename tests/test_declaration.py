"""The cookie declaration page, the widget's embedded declaration, and expiry texts."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from consent.inventory.expiry import parse_expiry
from consent.inventory.texts import BANNER_TEXTS
from consent.store.models import InventoryVersion, db

HOSTILE_INVENTORY = Path(__file__).parent / "support" / "hostile.yaml"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    """A parsed HTML element: enough of a DOM to check what a page says and how."""

    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[Node | str] = []

    def find_all(self, tag: str) -> list[Node]:
        found: list[Node] = []
        for child in self.children:
            if isinstance(child, Node):
                found.extend(([child] if child.tag == tag else []) + child.find_all(tag))
        return found

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_endtag(self, tag: str) -> None:
        while len(self.open) > 1 and self.open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def embedded_declaration(script: str) -> dict[str, Any]:
    """The declaration the service put inside the widget's source."""
    match = re.search(r"const DECLARATION = (\{.*\});\n", script)
    assert match, "the widget carries no declaration"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def page(client: FlaskClient, url: str, **headers: str) -> Node:
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return parse(response.text)


def test_page_lists_every_category_and_cookie_with_the_inventory_texts(client: FlaskClient) -> None:
    public = client.get("/api/v1/sites/demo/inventory").json
    document = page(client, "/s/demo/cookies")
    assert document.find_all("html")[0].attrs["lang"] == "en"
    sections = document.find_all("section")
    assert [s.find_all("h2")[0].text for s in sections] == [c["label"]["en"] for c in public["categories"]]
    assert [s.find_all("p")[0].text for s in sections] == [c["description"]["en"] for c in public["categories"]]
    rows = [
        [cell.text for cell in row.children if isinstance(cell, Node)]
        for section in sections
        for row in section.find_all("tbody")[0].find_all("tr")
    ]
    expected = [
        [
            c["name"] + ("*" if c["match"] == "prefix" else ""),
            c["provider"],
            c["purpose"]["en"],
            c["expiry"]["text"]["en"],
        ]
        for category in public["categories"]
        for c in public["cookies"]
        if c["category"] == category["key"]
    ]
    assert rows == expected
    assert ["consent", "Demo Shop Ltd"] == rows[0][:2]
    assert ["_ga*", "Google Analytics", "Distinguishes visitors and sessions.", "13 months"] in rows


def test_tables_are_accessible(client: FlaskClient) -> None:
    document = page(client, "/s/demo/cookies")
    tables = document.find_all("table")
    assert len(tables) == 4
    for table in tables:
        assert table.find_all("caption")[0].text.strip()
        columns = table.find_all("thead")[0].find_all("th")
        assert [th.attrs.get("scope") for th in columns] == ["col"] * 4
        assert [th.text for th in columns] == ["Name", "Provider", "Purpose", "Expiry"]
        for row in table.find_all("tbody")[0].find_all("tr"):
            cells = [cell for cell in row.children if isinstance(cell, Node)]
            assert cells[0].tag == "th" and cells[0].attrs.get("scope") == "row"
            assert [cell.tag for cell in cells[1:]] == ["td"] * 3
    captions = [table.find_all("caption")[0].text for table in tables]
    assert captions == ["Strictly necessary", "Functional", "Analytics", "Advertising"]


def test_page_shows_revision_and_the_date_the_version_was_first_served(app: Flask, client: FlaskClient) -> None:
    document = page(client, "/s/demo/cookies")
    with app.app_context():
        served = db.session.execute(db.select(InventoryVersion)).scalar_one().first_served_at
    version = next(p for p in document.find_all("p") if "Revision" in p.text)
    assert version.text.split() == ["Revision", "1", "·", "In", "use", "since", served.strftime("%Y-%m-%d")]
    assert version.find_all("time")[0].attrs["datetime"] == served.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The date stays that of the first serving, not of the latest request.
    again = page(client, "/s/demo/cookies")
    assert next(p for p in again.find_all("p") if "Revision" in p.text).text == version.text


@pytest.mark.parametrize(
    ("url", "headers", "language"),
    [
        ("/s/demo/cookies?lang=nl", {}, "nl"),
        ("/s/demo/cookies?lang=nl-BE", {}, "nl"),
        ("/s/demo/cookies", {"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"}, "nl"),
        ("/s/demo/cookies?lang=en", {"Accept-Language": "nl"}, "en"),
        ("/s/demo/cookies?lang=fr", {}, "en"),
        ("/s/demo/cookies?lang=%3Cscript%3E", {}, "en"),
        ("/s/demo/cookies", {"Accept-Language": "de"}, "en"),
    ],
)
def test_page_language(client: FlaskClient, url: str, headers: dict[str, str], language: str) -> None:
    document = page(client, url, **headers)
    assert document.find_all("html")[0].attrs["lang"] == language
    heading = document.find_all("th")[0].text
    assert heading == BANNER_TEXTS[language]["name"]


def test_dutch_page_says_everything_in_dutch(client: FlaskClient) -> None:
    document = page(client, "/s/demo/cookies?lang=nl")
    text = " ".join(document.find_all("main")[0].text.split())
    for dutch in ("Strikt noodzakelijk", "Aanbieder", "Looptijd", "13 maanden", "Sessie", "30 minuten", "1 jaar"):
        assert dutch in text
    for english in ("13 months", "Provider", "Distinguishes visitors"):
        assert english not in text
    expiries = {row.find_all("td")[-1].text for row in document.find_all("tbody")[0].find_all("tr")}
    assert expiries == {"180 dagen", "Sessie", "1 jaar"}
    links = {a.attrs["hreflang"]: a.attrs["href"] for a in document.find_all("nav")[0].find_all("a")}
    assert links == {"en": "?lang=en"}


def test_page_is_printable_and_locked_down(client: FlaskClient) -> None:
    response = client.get("/s/demo/cookies")
    style = parse(response.text).find_all("style")[0]
    assert "@media print" in style.text
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert f"style-src 'nonce-{style.attrs['nonce']}'" in policy
    assert "Accept-Language" in response.headers["Vary"]


def test_unknown_site(client: FlaskClient) -> None:
    for url in ("/s/nope/cookies", "/s/nope/declaration.js"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"


def test_widget_carries_the_same_texts_as_the_inventory(app: Flask, client: FlaskClient) -> None:
    public = client.get("/api/v1/sites/demo/inventory").json
    response = client.get("/s/demo/declaration.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    declaration = embedded_declaration(response.text)
    assert declaration["revision"] == public["revision"] == 1
    assert declaration["hash"] == public["hash"]
    assert declaration["languages"] == ["en", "nl"]
    assert declaration["categories"] == public["categories"]
    assert [c["name"] for c in declaration["cookies"]] == [c["name"] for c in public["cookies"]]
    for ours, theirs in zip(declaration["cookies"], public["cookies"], strict=True):
        assert ours["purpose"] == theirs["purpose"]
        assert ours["provider"] == theirs["provider"]
        assert ours["expiry"] == theirs["expiry"]["text"]
    for language in ("en", "nl"):
        for key, text in declaration["texts"][language].items():
            assert public["texts"][language][key] == text
    assert declaration["api"] == "/api/v1/sites/demo"
    with app.app_context():
        served = db.session.execute(db.select(InventoryVersion)).scalar_one().first_served_at
    assert declaration["first_served_at"].startswith(served.strftime("%Y-%m-%dT%H:%M:%S"))


def test_widget_is_cacheable_compressed_and_revalidated(client: FlaskClient) -> None:
    plain = client.get("/s/demo/declaration.js")
    packed = client.get("/s/demo/declaration.js", headers={"Accept-Encoding": "gzip, br"})
    assert plain.headers["Cache-Control"] == packed.headers["Cache-Control"] == "public, max-age=300"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data) / 2
    assert plain.headers["ETag"] != packed.headers["ETag"]
    for response, encoding in ((plain, "identity"), (packed, "gzip")):
        headers = {"If-None-Match": response.headers["ETag"], "Accept-Encoding": encoding}
        again = client.get("/s/demo/declaration.js", headers=headers)
        assert again.status_code == 304
        assert again.data == b""


def test_hostile_inventory_is_escaped_in_the_page(make_app: Callable[..., Flask]) -> None:
    client = make_app(INVENTORY=str(HOSTILE_INVENTORY)).test_client()
    response = client.get("/s/hostile/cookies")
    assert response.status_code == 200
    document = parse(response.text)
    assert document.find_all("script") == []
    assert document.find_all("img") == []
    assert "&lt;script&gt;window.__pwned" in response.text
    assert "<script>window.__pwned" in document.find_all("title")[0].text
    assert "<img src=x onerror=" in document.find_all("tbody")[0].text


def test_hostile_inventory_is_plain_data_in_the_widget(make_app: Callable[..., Flask]) -> None:
    client = make_app(INVENTORY=str(HOSTILE_INVENTORY)).test_client()
    script = client.get("/s/hostile/declaration.js").text
    declaration = embedded_declaration(script)
    # No "<" from the inventory reaches the source as markup: only as \u003c escapes.
    assert "<" not in script[script.index("const DECLARATION") : script.index("const CONTAINER_ID")]
    assert declaration["name"].startswith("<script>window.__pwned")
    assert "<img src=x onerror=" in declaration["cookies"][1]["purpose"]["en"]


@pytest.mark.parametrize(
    ("expiry", "language", "text"),
    [
        ("1 month", "en", "1 month"),
        ("0 days", "en", "0 days"),
        ("2 hours", "nl", "2 uur"),
        ("13 months", "nl-BE", "13 maanden"),
        ("1 day", "nl-be", "1 dag"),
        ("1 year", "de-AT", "1 Jahr"),
        ("2 days", "de-CH", "2 Tage"),
        ("0 days", "fr", "0 jour"),
        ("0 days", "fr-CA", "0 jour"),
        ("2 years", "fr-BE", "2 ans"),
        ("session", "nl-BE", "Sessie"),
        ("3 weeks", "pt-BR", "3 weeks"),
    ],
)
def test_expiry_text_in_regional_variants_and_for_zero(expiry: str, language: str, text: str) -> None:
    assert parse_expiry(expiry).text(language) == text


def test_inventory_json_carries_expiry_text_in_every_site_language(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    inventory = tmp_path / "shop.yaml"
    inventory.write_text(
        "site: shop\nname: Shop\norigins: [https://shop.example]\nrevision: 2\nlanguages: [de, fr, nl-BE]\n"
        "cookies:\n"
        "  - {name: a, category: analytics, provider: P, purpose: {de: Zweck}, expiry: 13 months}\n"
        "  - {name: b, category: functional, provider: P, purpose: {de: Zweck}, expiry: session}\n"
        "  - {name: c, category: functional, provider: P, purpose: {de: Zweck}, expiry: 1 day}\n",
        encoding="utf-8",
    )
    client = make_app(INVENTORY=str(inventory)).test_client()
    cookies = client.get("/api/v1/sites/shop/inventory").json["cookies"]
    assert [c["expiry"]["text"] for c in cookies[1:]] == [
        {"de": "13 Monate", "fr": "13 mois", "nl-BE": "13 maanden"},
        {"de": "Sitzung", "fr": "Session", "nl-BE": "Sessie"},
        {"de": "1 Tag", "fr": "1 jour", "nl-BE": "1 dag"},
    ]
    assert [c["expiry"]["seconds"] for c in cookies[1:]] == [13 * 30 * 86400, None, 86400]
    document = page(client, "/s/shop/cookies?lang=fr")
    assert "13 mois" in document.find_all("main")[0].text


def test_the_widget_never_names_the_host_it_was_requested_at(client):
    response = client.get("/s/demo/declaration.js", headers={"Host": "evil.example", "Accept-Encoding": "identity"})
    assert response.status_code == 200
    # Its API address is a path, resolved against the script's own URL in the browser.
    assert b'"api":"/api/v1/sites/demo"' in response.data
    assert b"evil.example" not in response.data
