"""The site's side of its ISO/IEC TS 27560 records: the service's address, the controller, the inventory versions.

The records themselves are built by consent.export.dpv, which needs no Flask;
this module hands it what only the running service knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, has_request_context
from sqlalchemy.orm import Session, scoped_session

from consent.embed.banner import service_url
from consent.export.dpv import RecordBuilder, Settings
from consent.inventory.sites import Site, jurisdictions
from consent.store.models import InventoryVersion


class AddressUnknown(ValueError):
    """No address for the service is configured, and there is no request to take one from."""


def service_address(site: Site) -> str:
    """The service's absolute address for this site's records: configured, else the request's (like the banner)."""
    if not has_request_context() and not (site.public_url or current_app.config.get("PUBLIC_URL")):
        raise AddressUnknown(
            "ISO 27560 records name absolute addresses: set CONSENT_PUBLIC_URL (or the site's public_url)"
        )
    return service_url(site)[0]


def record_settings(site: Site) -> Settings:
    """What the site's records say beyond the inventory version: addresses, controller and jurisdiction."""
    return Settings(
        site=site.key,
        base=service_address(site),
        controller=site.controller,
        jurisdiction=jurisdictions(site),
        preferences_url=site.origins[0] + "/",
    )


def record_builder(site: Site, session: Session | scoped_session[Any]) -> RecordBuilder:
    """A builder of the site's records that reads each record's inventory version from ``session``."""

    def version_of(inventory_hash: str) -> Mapping[str, Any]:
        version = session.get(InventoryVersion, inventory_hash)
        # A record under a version that was never stored is described by the current inventory.
        return version.content if version is not None and version.site == site.key else site.public

    return RecordBuilder(record_settings(site), version_of)
