"""``consent scan`` against a shop the tests serve on 127.0.0.1, embedding the banner of a live service."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from consent.cli import cli
from consent.embed.undeclared import is_declared, record_report
from consent.inventory.sites import load_site, sites
from consent.scan.knowledge import OCD_COLUMNS, load_built_in
from consent.scan.stored import store_scan
from consent.timestamps import utcnow
from tests.support.browser import serving
from tests.support.inventory import write_document
from tests.support.live import LiveService, migrate
from tests.support.ports import free_port
from tests.support.scan_site import (
    AFTER_ACCEPT,
    FRAME_COOKIE,
    LEAKED,
    NEVER_SET,
    SERVER_COOKIE,
    STORAGE_KEY,
    Recorder,
    ScanSite,
    write_shop_inventory,
)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CONSENT_CHROMIUM", "/usr/bin/chromium")
VENDORS = (
    "Google Analytics", "Google Tag Manager", "Google Ads", "Meta", "Hotjar", "HubSpot", "YouTube", "Vimeo",
    "Stripe", "Cloudflare", "WordPress", "WooCommerce", "Shopify", "Matomo", "LinkedIn", "TikTok",
    "Microsoft Clarity", "Bing", "Pinterest", "Intercom", "Zendesk",
)  # fmt: skip


@dataclass
class World:
    """The shop, the hosts around it, the live service and the database the scanner writes to."""

    shop: ScanSite
    frame_host: Recorder
    elsewhere: Recorder
    service: LiveService
    inventory: Path
    database: Path
    folder: Path

    def scan(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``consent scan --site shop ARGS`` as a user runs it, with the service's configuration."""
        env = {**self.service.env, "CONSENT_DATABASE_URL": f"sqlite:///{self.database}"}
        return subprocess.run(
            [sys.executable, "-m", "consent", "scan", "--site", "shop", "--chromium", CHROMIUM, *args],
            cwd=ROOT, env=env, text=True, capture_output=True, timeout=timeout,
        )  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("scan")
    database = folder / "consent.db"
    migrate(f"sqlite:///{database}")
    with serving(Recorder()) as frame_host, serving(Recorder()) as elsewhere:
        with serving(ScanSite(frame_host, elsewhere)) as shop:
            live = LiveService(f"sqlite:///{database}", workers=1)
            inventory = write_shop_inventory(folder / "inventory", shop, live.base)
            live.env["CONSENT_INVENTORY"] = str(inventory)
            with live:
                shop.service = live.base
                yield World(shop, frame_host, elsewhere, live, inventory, database, folder)


@pytest.fixture(scope="module")
def full_scan(world: World) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    """One scan of the whole shop, with its JSON report and YAML draft."""
    report, draft = world.folder / "report.json", world.folder / "draft.yaml"
    result = world.scan(world.shop.origin + "/", "--json", str(report), "--yaml-draft", str(draft))
    assert report.exists(), result.stderr
    return result, json.loads(report.read_text()), draft


def names(entries: list[dict[str, Any]], kind: str | None = None) -> set[str]:
    """The names of what the scanner saw, leaving out the banner's own cookie and storage."""
    return {
        e["name"]
        for e in entries
        if (kind is None or e["kind"] == kind) and e["name"] != "consent" and not e["name"].startswith("consent.")
    }


def test_the_scan_finds_exactly_what_the_shop_holds(full_scan, world):
    result, report, _ = full_scan
    assert result.returncode == 2, result.stderr
    assert report["errors"] == []
    assert report["pages"] == ["/", "/page2.html", "/page3.html"]
    assert names(report["seen"], "cookie") == {LEAKED, SERVER_COOKIE, FRAME_COOKIE, AFTER_ACCEPT}
    assert names(report["seen"], "local_storage") == {STORAGE_KEY}
    assert names(report["seen"], "request") == {world.frame_host.origin}
    # The leak: _ga is stored before a choice; nothing else leaks.
    assert [(e["kind"], e["name"]) for e in report["leaks"]] == [("cookie", LEAKED)]
    assert report["leaks"][0]["passes"]["none"] == report["pages"]
    assert report["leaks"][0]["set_by"] == world.shop.origin + "/ga.js"
    assert [e["name"] for e in report["undeclared"]] == [AFTER_ACCEPT]
    assert set(report["undeclared"][0]["passes"]) == {"accept"}
    assert [c["name"] for c in report["declared_never_seen"]] == [NEVER_SET]
    assert "Leaks: 1" in result.stdout and LEAKED in result.stdout


def test_each_cookie_comes_with_its_attributes_and_its_setter(full_scan, world):
    _, report, _ = full_scan
    seen = {e["name"]: e for e in report["seen"] if e["kind"] == "cookie"}
    server = seen[SERVER_COOKIE]
    assert server["http_only"] is True and server["same_site"] == "Lax" and server["expires"] is None
    assert server["set_by"] == world.shop.origin + "/"
    assert set(server["passes"]) == {"none", "reject", "accept"}
    frame = seen[FRAME_COOKIE]
    assert frame["set_by"] == world.frame_host.origin + "/frame.html"
    assert set(frame["passes"]) == {"accept"} and 29 * 86400 < frame["lifetime_seconds"] <= 30 * 86400
    assert seen[LEAKED]["path"] == "/" and seen[LEAKED]["http_only"] is False
    # The frame's host is contacted only once functional is granted, the partner's never.
    contacted = next(e for e in report["seen"] if e["kind"] == "request")
    assert set(contacted["passes"]) == {"accept"}


def test_the_scan_never_submits_a_form_nor_follows_another_host(full_scan, world):
    assert ("POST", "/order") not in world.shop.requests
    assert world.elsewhere.requests == []
    assert world.shop.page_paths_requested() == {"/", "/page2.html", "/page3.html"}


def test_the_yaml_draft_passes_consent_check_once_merged(full_scan, world, tmp_path):
    _, report, draft = full_scan
    entries = YAML(typ="rt").load(draft.read_text())["cookies"]
    suggestion = next(s for s in report["suggestions"] if s["name"] == entries[0]["name"])
    # The knowledge base knows Hotjar's per-site user cookie; its lifetime is the one observed.
    assert (suggestion["provider"], suggestion["category"], suggestion["expiry"]) == ("Hotjar", "analytics", "1 year")
    assert entries[0]["match"] == "regex"
    document = YAML(typ="rt").load((world.inventory / "shop.yaml").read_text())
    document["cookies"].extend(entries)
    merged = tmp_path / "shop.yaml"
    write_document(merged, document)
    check = subprocess.run(
        [sys.executable, "-m", "consent", "check", str(merged)], cwd=ROOT, text=True, capture_output=True, timeout=60
    )
    assert check.returncode == 0, check.stderr
    assert is_declared(load_site(merged), AFTER_ACCEPT)


def test_the_newest_scan_is_kept_in_the_database(full_scan, world):
    _, report, _ = full_scan
    with sqlite3.connect(world.database) as connection:
        rows = connection.execute("SELECT site, report FROM site_scans").fetchall()
    assert [(site, json.loads(stored)["started_at"]) for site, stored in rows] == [("shop", report["started_at"])]


def test_max_pages_bounds_the_crawl(world):
    before = len(world.shop.requests)
    result = world.scan(world.shop.origin + "/", "--max-pages", "1", "--no-store")
    assert result.returncode == 2, result.stderr
    visited = {path for method, path in world.shop.requests[before:] if path != "/ga.js"}
    assert visited == {"/"}
    assert "stopped by max-pages" in result.stdout


def test_max_seconds_stops_the_crawl_in_time(tmp_path):
    with serving(Recorder()) as frame_host, serving(Recorder()) as elsewhere:
        # Ten pages that each take a second to answer: far more than three seconds' worth.
        with serving(ScanSite(frame_host, elsewhere, pages=10, delay=1.0)) as slow:
            database = tmp_path / "consent.db"
            migrate(f"sqlite:///{database}")
            live = LiveService(f"sqlite:///{database}", workers=1)
            live.env["CONSENT_INVENTORY"] = str(write_shop_inventory(tmp_path / "inventory", slow, live.base))
            with live:
                slow.service = live.base
                report = tmp_path / "report.json"
                env = {**live.env, "CONSENT_DATABASE_URL": f"sqlite:///{database}"}
                started = time.monotonic()
                result = subprocess.run(
                    [sys.executable, "-m", "consent", "scan", "--site", "shop", "--chromium", CHROMIUM,
                     slow.origin + "/", "--max-seconds", "3", "--json", str(report)],
                    cwd=ROOT, env=env, text=True, capture_output=True, timeout=120,
                )  # fmt: skip
                took = time.monotonic() - started
    found = json.loads(report.read_text())
    assert result.returncode in (0, 2), result.stderr
    assert found["bounds"]["stopped"] == "max-seconds"
    assert found["elapsed_seconds"] <= 3.5 and len(found["pages"]) < 10
    assert took < 3 + 15  # the crawl's bound plus starting Python and the app


def test_knowledge_from_an_open_cookie_database_file_changes_a_suggestion(world, tmp_path):
    table = tmp_path / "open-cookie-database.csv"
    with table.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(OCD_COLUMNS)
        writer.writerow(["b0c1", "Hotjar Marketing Suite", "Marketing", "_hjSessionUser_", "example.com",
                         "Identifies the visitor for remarketing.", "400 days", "Hotjar", "", "1"])  # fmt: skip
    report = tmp_path / "report.json"
    result = world.scan(world.shop.origin + "/", "--max-pages", "1", "--no-store", "--knowledge", str(table),
                        "--json", str(report))  # fmt: skip
    assert result.returncode == 2, result.stderr
    suggestion = json.loads(report.read_text())["suggestions"][0]
    assert suggestion["name"] == "_hjSessionUser_" and suggestion["match"] == "prefix"
    assert (suggestion["provider"], suggestion["category"]) == ("Hotjar Marketing Suite", "advertising")
    assert suggestion["source"] == f"{table.name}:2"


def test_without_playwright_one_line_says_how_to_install(world):
    # Playwright made unimportable in the scanner's own process, as if the extra were not installed.
    code = "import sys; sys.modules['playwright'] = None; from consent.cli import main; main()"
    env = {**world.service.env, "CONSENT_DATABASE_URL": f"sqlite:///{world.database}"}
    result = subprocess.run(
        [sys.executable, "-c", code, "scan", "--site", "shop", "--chromium", CHROMIUM, world.shop.origin + "/"],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: consent scan needs Playwright for Python: pip install 'consent[scan]'"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://localhost:8000/"], "Missing option '--site'"),
        (["--site", "nope", "http://localhost:8000/"], "unknown site 'nope'"),
        (["--site", "demo", "https://elsewhere.example/"], "is not a page within the origins of site 'demo'"),
        (["--site", "demo", "javascript:alert(1)"], "is not a page within the origins"),
        (["--site", "demo", "--max-pages", "0", "http://localhost:8000/"], "--max-pages"),
        (["--site", "demo", "--max-seconds", "soon", "http://localhost:8000/"], "--max-seconds"),
        (["--site", "demo", "--chromium", "/nonexistent/chromium", "http://localhost:8000/"], "no Chromium at"),
        (["--site", "demo", "--knowledge", "/nonexistent.csv", "http://localhost:8000/"], "cannot read"),
        (["--site", "demo"], "Missing argument 'URLS...'"),
    ],
)
def test_usage_errors_exit_1_with_a_message_and_store_nothing(runner, app, args, message):
    result = runner.invoke(cli, ["scan", *args])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_database_without_the_scans_table_is_refused_before_the_crawl(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    result = app.test_cli_runner().invoke(cli, ["scan", "--site", "demo", "http://localhost:8000/"])
    assert result.exit_code == 1
    assert "run `consent db upgrade`, or pass --no-store" in result.output


def test_a_site_that_cannot_be_reached_exits_1(world, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    inventory = tmp_path / "shop.yaml"
    write_document(inventory, {**YAML(typ="safe").load((world.inventory / "shop.yaml").read_text()), "origins": [down]})
    env = {**world.service.env, "CONSENT_INVENTORY": str(inventory)}
    result = subprocess.run(
        [sys.executable, "-m", "consent", "scan", "--site", "shop", "--chromium", CHROMIUM, down + "/", "--no-store"],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "no page could be scanned" in result.stderr and "ERR_CONNECTION_REFUSED" in result.stdout


def test_a_binary_that_is_not_chromium_is_named(runner, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    result = runner.invoke(
        cli, ["scan", "--site", "demo", "--no-store", "--chromium", str(fake), "http://localhost:8000/"]
    )
    assert result.exit_code == 1
    assert f"could not start Chromium at {fake}:" in result.output and "Traceback" not in result.output


def test_a_knowledge_file_without_the_open_cookie_database_columns_is_refused(runner, tmp_path):
    table = tmp_path / "cookies.csv"
    table.write_text("name,category\n_ga,analytics\n")
    result = runner.invoke(cli, ["scan", "--site", "demo", "--knowledge", str(table), "http://localhost:8000/"])
    assert result.exit_code == 1
    assert f"{table}:1: not an Open Cookie Database CSV: no column 'ID'" in result.output


def test_the_knowledge_base_has_100_entries_covering_each_vendor():
    entries = load_built_in()
    assert len(entries) >= 100
    providers = " ".join(entry.cookie.provider for entry in entries)
    assert [vendor for vendor in VENDORS if vendor not in providers] == []
    assert len({(e.cookie.name, e.cookie.match) for e in entries}) == len(entries)


def test_the_dashboard_marks_who_saw_each_undeclared_name(app, client, admin_headers):
    with app.app_context():
        site = sites()["demo"]
        record_report(site, ["visitor_only", "both_saw"], "/basket")
        report = {"undeclared": [{"name": "scanner_only", "kind": "cookie"}, {"name": "both_saw", "kind": "cookie"}]}
        store_scan("demo", utcnow(), {**report, "leaks": [], "pages": ["/"], "declared_never_seen": []})
    page = client.get("/admin/sites/demo", headers=admin_headers).get_data(as_text=True)
    rows = {
        name: page.split(f"<code>{name}</code>", 1)[1].split("</tr>", 1)[0]
        for name in ("visitor_only", "both_saw", "scanner_only")
    }
    assert "reported by visitors" in rows["visitor_only"] and "seen by the scanner" not in rows["visitor_only"]
    assert "seen by the scanner" in rows["scanner_only"] and "reported by visitors" not in rows["scanner_only"]
    assert "seen by the scanner" in rows["both_saw"] and "reported by visitors" in rows["both_saw"]
