"""A regional copy of the demo site, and a small GeoIP file built by the test itself."""

from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

ROOT = Path(__file__).resolve().parents[2]

REGIONS = """
regions:
  EU: opt-in
  GB: opt-in
  NO: opt-in
  US-CA: opt-out
  US-CO: opt-out
  US: notice
  JP: none
reask_after_refusal_days: 120
consent_mode:
  wait_for_update: 800
  url_passthrough: true
"""

# Addresses of the documentation ranges (RFC 5737, RFC 3849), each placed somewhere.
PLACES = {
    "198.51.100.0/24": {"country": {"iso_code": "US"}, "subdivisions": [{"iso_code": "CA"}]},
    "203.0.113.0/24": {"country": {"iso_code": "DE"}},
    "192.0.2.0/24": {"country": {"iso_code": "JP"}, "subdivisions": [{"iso_code": "13"}]},
    "2001:db8::/32": {"country": {"iso_code": "US"}, "subdivisions": [{"iso_code": "CO"}]},
}


def regional_inventory(folder: Path, extra: str = REGIONS) -> Path:
    """The demo inventory with regions (``extra``) added, written into ``folder``."""
    demo = (ROOT / "cookies.yaml").read_text(encoding="utf-8")
    path = folder / "cookies.yaml"
    path.write_text(demo.rstrip("\n") + "\n" + extra, encoding="utf-8")
    return path


def geoip_file(folder: Path) -> Path:
    """A MaxMind database (City layout) of ``PLACES``."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    for network, place in PLACES.items():
        writer.insert_network(IPSet([network]), place)
    path = folder / "places.mmdb"
    writer.to_db_file(str(path))
    return path
