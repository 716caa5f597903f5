"""Where a visitor is: a country and maybe a subdivision, from a trusted CDN header or a local GeoIP file.

Only what the operator configured is read: without ``CONSENT_REGION_HEADER``
no request header is trusted (anyone can send ``CF-IPCountry``), and without
``CONSENT_GEOIP_DATABASE`` no address is looked up. A region is kept as
``DE`` or ``US-CA``, nothing finer; any other value is an unknown region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, Request, current_app

from consent.config import ConfigurationError
from consent.inventory.regimes import COUNTRIES

# Shortcuts for the common CDNs: (country header, subdivision header).
SHORTCUTS: dict[str, tuple[str, str | None]] = {
    "cloudflare": ("CF-IPCountry", None),
    "cloudfront": ("CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Region"),
    "vercel": ("X-Vercel-IP-Country", "X-Vercel-IP-Country-Region"),
}
# A known country header named in full brings its subdivision header along.
IMPLIED_SUBDIVISION = {country.lower(): subdivision for country, subdivision in SHORTCUTS.values() if subdivision}
HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")
SUBDIVISION = re.compile(r"^(?:(?P<country>[A-Z]{2})-)?(?P<code>[A-Z0-9]{1,3})$")
EXTENSION = "consent.regions"


class GeoReader(Protocol):
    def get(self, ip_address: str) -> Any: ...


@dataclass(frozen=True)
class RegionSource:
    """The configured ways to find a region: trusted headers (names) and a GeoIP reader."""

    country_header: str | None = None
    subdivision_header: str | None = None
    geoip: GeoReader | None = None

    @property
    def headers(self) -> tuple[str, ...]:
        """The trusted request headers, as ``Vary`` names them."""
        return tuple(name for name in (self.country_header, self.subdivision_header) if name)

    @property
    def environ_keys(self) -> tuple[str, ...]:
        """The trusted headers as WSGI environ keys (``HTTP_CF_IPCOUNTRY``)."""
        return tuple("HTTP_" + name.upper().replace("-", "_") for name in self.headers)


@dataclass(frozen=True)
class Located:
    """A request's region (``DE``, ``US-CA`` or None) and whether the client address decided it."""

    region: str | None
    from_address: bool = False


def region_of(country: str | None, subdivision: str | None = None) -> str | None:
    """A stored region from a country and subdivision as headers or GeoIP give them; None if not a real one."""
    country = (country or "").strip().upper()
    if country not in COUNTRIES:  # XX, T1 (Tor), EU, empty, anything malformed
        return None
    match = SUBDIVISION.match((subdivision or "").strip().upper())
    if match is None or match["country"] not in (None, country):
        return country
    return f"{country}-{match['code']}"


def _header_name(value: str, variable: str) -> str:
    if not HEADER_NAME.match(value):
        raise ConfigurationError(f"{variable}: {value!r} is not a header name like CF-IPCountry")
    return value


def _open_geoip(path: str) -> GeoReader:
    try:
        import maxminddb
    except ImportError:
        raise ConfigurationError(
            "CONSENT_GEOIP_DATABASE is set but maxminddb is not installed (pip install 'consent[geoip]')"
        ) from None
    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"CONSENT_GEOIP_DATABASE: {path}: no such file")
    try:
        return maxminddb.open_database(str(file))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
        raise ConfigurationError(f"CONSENT_GEOIP_DATABASE: {path}: not a readable MaxMind database ({error})") from None


def configured_source(config: dict[str, Any]) -> RegionSource:
    """The region source the configuration asks for; a bad header name or GeoIP file stops the start."""
    given = (config.get("REGION_HEADER") or "").strip()
    subdivision = (config.get("REGION_SUBDIVISION_HEADER") or "").strip() or None
    country: str | None = None
    if given:
        country, implied = SHORTCUTS.get(given.lower(), (given, IMPLIED_SUBDIVISION.get(given.lower())))
        country = _header_name(country, "CONSENT_REGION_HEADER")
        subdivision = subdivision or implied
    if subdivision is not None:
        if country is None:
            raise ConfigurationError("CONSENT_REGION_SUBDIVISION_HEADER needs CONSENT_REGION_HEADER")
        subdivision = _header_name(subdivision, "CONSENT_REGION_SUBDIVISION_HEADER")
    database = (config.get("GEOIP_DATABASE") or "").strip()
    return RegionSource(country, subdivision, _open_geoip(database) if database else None)


def _geoip_region(reader: GeoReader, address: str | None) -> str | None:
    if not address:
        return None
    try:
        found = reader.get(address)
    except ValueError:  # not an IP address
        return None
    if not isinstance(found, dict):
        return None
    country = found.get("country")
    subdivisions = found.get("subdivisions")
    code = country.get("iso_code") if isinstance(country, dict) else None
    first = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else None
    return region_of(code, first.get("iso_code") if isinstance(first, dict) else None)


def region_source(app: Flask) -> RegionSource:
    """The region source of ``app`` (set up by ``init_app``)."""
    found: RegionSource = app.extensions[EXTENSION]
    return found


def source() -> RegionSource:
    """The current app's region source."""
    return region_source(current_app)


def locate(request: Request) -> Located:
    """The request's region: the trusted header first, then the GeoIP file by client address."""
    configured = source()
    if configured.country_header:
        sub = request.headers.get(configured.subdivision_header) if configured.subdivision_header else None
        region = region_of(request.headers.get(configured.country_header), sub)
        if region is not None:
            return Located(region)
    if configured.geoip is not None:
        return Located(_geoip_region(configured.geoip, request.remote_addr), from_address=True)
    return Located(None)


def sent_gpc(request: Request) -> bool:
    """Whether the request carried ``Sec-GPC: 1`` (the only value the GPC specification defines)."""
    return request.headers.get("Sec-GPC", "").strip() == "1"


def init_app(app: Flask) -> None:
    """Read the region settings once; a bad one stops the start."""
    app.extensions[EXTENSION] = configured_source(app.config)
