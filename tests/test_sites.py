"""Several sites in one deployment: kept apart everywhere, and inventories reloaded by gunicorn's HUP."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consent.cli import cli
from consent.log.stats import site_stats
from tests.support.admin_seed import record, seed
from tests.support.inventory import write_site
from tests.support.live import LiveService

ROOT = Path(__file__).resolve().parent.parent
DEMO_ORIGIN = "http://localhost:8000"
SHOP_ORIGIN = "https://shop.example"
A_ID = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"
B_ID = "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"


def write_inventory(folder: Path, *, revision: int = 1, shop_extra: str = "") -> Path:
    """A folder with the demo site and a second site ``shop`` on its own origin."""
    write_site(folder / "demo.yaml")
    shop = (
        f"site: shop\nname: Second Shop\norigins: [{SHOP_ORIGIN}]\nrevision: {revision}\n"
        "cookies:\n  - {name: basket, category: necessary, provider: Shop, purpose: {en: Basket.}, expiry: 1 day}\n"
    )
    (folder / "shop.yaml").write_text(shop + shop_extra, encoding="utf-8")
    return folder


@pytest.fixture
def two_sites(make_app, tmp_path):
    app = make_app(INVENTORY=str(write_inventory(tmp_path / "sites")))
    now = datetime.now(UTC)
    seed(
        app,
        [
            record("demo", now - timedelta(days=1), consent_id=A_ID),
            record("demo", now - timedelta(minutes=5), "reject_all", consent_id=A_ID),
            record("shop", now - timedelta(days=1), "custom", analytics=True, gpc=True, consent_id=B_ID),
        ],
    )
    return app


def test_each_sites_statistics_count_only_its_records(two_sites):
    with two_sites.app_context():
        demo, shop = site_stats("demo").totals, site_stats("shop").totals
    assert (demo.records, demo.accept_all, demo.reject_all, demo.custom, demo.gpc) == (2, 1, 1, 0, 0)
    assert (shop.records, shop.accept_all, shop.reject_all, shop.custom, shop.gpc) == (1, 0, 0, 1, 1)


def test_each_sites_dashboard_shows_only_its_records(two_sites, admin_headers):
    client = two_sites.test_client()
    demo = client.get("/admin/sites/demo", headers=admin_headers).get_data(as_text=True)
    shop = client.get("/admin/sites/shop", headers=admin_headers).get_data(as_text=True)
    assert A_ID in demo and B_ID not in demo
    assert B_ID in shop and A_ID not in shop
    assert 'id="total-records">2<' in demo and 'id="total-records">1<' in shop
    # A consent ID is looked up within its site only.
    other = client.get(f"/admin/sites/shop?consent_id={A_ID}", headers=admin_headers).get_data(as_text=True)
    assert "No records for this consent ID" in other
    overview = client.get("/admin", headers=admin_headers).get_data(as_text=True)
    assert "Demo Shop Ltd" in overview and "Second Shop" in overview


def test_a_visitors_history_is_not_reachable_through_another_site(two_sites, admin_headers):
    client = two_sites.test_client()
    assert client.get(f"/api/v1/sites/demo/consents/{A_ID}", headers=admin_headers).status_code == 200
    assert client.get(f"/api/v1/sites/shop/consents/{A_ID}", headers=admin_headers).status_code == 404


def test_undeclared_reports_stay_with_their_site(two_sites, admin_headers, runner):
    client = two_sites.test_client()
    body = json.dumps({"names": ["shop_tracker"], "page_path": "/", "revision": 1})
    # The demo site's origin may not report for the shop, and the other way round.
    refused = client.post(
        "/api/v1/sites/shop/undeclared", data=body, headers={"Origin": DEMO_ORIGIN, "Content-Type": "text/plain"}
    )
    assert refused.status_code == 403
    accepted = client.post(
        "/api/v1/sites/shop/undeclared", data=body, headers={"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}
    )
    assert accepted.status_code == 202
    demo = client.get("/admin/sites/demo", headers=admin_headers).get_data(as_text=True)
    shop = client.get("/admin/sites/shop", headers=admin_headers).get_data(as_text=True)
    assert "shop_tracker" in shop and "shop_tracker" not in demo
    cli = two_sites.test_cli_runner()
    assert "shop_tracker" in cli.invoke(args=["undeclared", "--site", "shop"]).output
    assert "shop_tracker" not in cli.invoke(args=["undeclared", "--site", "demo"]).output


def served_revision(base: str, timeout: float = 2) -> int | None:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/sites/shop/inventory", timeout=timeout) as response:
            return int(json.load(response)["revision"])
    except (OSError, urllib.error.HTTPError):
        return None


def sites_service(folder: Path, database_url: str) -> LiveService:
    """gunicorn serving an inventory folder, two workers."""
    return LiveService(database_url, workers=2, env={"CONSENT_INVENTORY": str(folder)})


def test_changed_inventory_is_served_after_hup_and_no_request_is_lost(make_app, database_url, tmp_path):
    make_app()  # the tables are emptied afterwards
    folder = write_inventory(tmp_path / "sites", revision=1)
    with sites_service(folder, database_url) as server:
        assert server.process is not None
        assert served_revision(server.base) == 1, server.stderr()
        write_inventory(folder, revision=2)
        server.process.send_signal(signal.SIGHUP)
        seen: list[int | None] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and 2 not in seen:
            # While the new workers boot, requests wait in the listen queue: slow, never refused.
            seen.append(served_revision(server.base, timeout=20))
            time.sleep(0.05)
        assert seen[-1] == 2, server.stderr()
        assert None not in seen and set(seen) <= {1, 2}
        assert server.process.poll() is None


def test_a_bad_inventory_at_hup_stops_gunicorn_with_the_located_error(make_app, database_url, tmp_path):
    # Documented in docs/dashboard.md: validate with `consent check` before sending HUP.
    make_app()
    folder = write_inventory(tmp_path / "sites")
    with sites_service(folder, database_url) as server:
        assert server.process is not None
        assert served_revision(server.base) == 1, server.stderr()
        write_inventory(folder, shop_extra="colour: blue\n")
        server.process.send_signal(signal.SIGHUP)
        server.process.wait(timeout=60)
    log = server.stderr()
    # Usually status 3; 1 when a worker still booting at the HUP fails too and gunicorn halts twice.
    assert server.process.returncode in (1, 3), log
    assert "shop.yaml:7: unknown key 'colour'" in log
    assert "Worker failed to boot" in log


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_each_sites_export_holds_only_its_records(two_sites, admin_headers, fmt):
    # An export holds what a signed head covers: seal first.
    assert two_sites.test_cli_runner().invoke(cli, ["seal"]).exit_code == 0
    client = two_sites.test_client()
    demo = client.get(f"/api/v1/sites/demo/export?format={fmt}", headers=admin_headers).get_data(as_text=True)
    shop = client.get(f"/api/v1/sites/shop/export?format={fmt}", headers=admin_headers).get_data(as_text=True)
    assert demo.count(A_ID) == 2 and B_ID not in demo
    assert shop.count(B_ID) == 1 and A_ID not in shop
