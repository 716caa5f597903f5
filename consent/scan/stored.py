"""The newest scan of each site, kept in the database for the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent.store.models import SiteScan, db


@dataclass(frozen=True)
class StoredScan:
    """A site's newest scan: when it ran and its report."""

    scanned_at: datetime
    report: dict[str, Any]

    def undeclared_pages(self) -> dict[str, list[str]]:
        """Each name the scanner saw that the inventory did not declare, with the pages it was seen on."""
        found: dict[str, list[str]] = {}
        for entry in self.report.get("undeclared", []):
            pages = found.setdefault(entry["name"], [])
            for seen_on in entry.get("passes", {}).values():
                pages.extend(page for page in seen_on if page not in pages)
        return found


def store_scan(site: str, scanned_at: datetime, report: dict[str, Any]) -> None:
    """Keep ``report`` as the site's newest scan (replacing the one before); commits."""
    row = db.session.get(SiteScan, site)
    if row is None:
        db.session.add(SiteScan(site=site, scanned_at=scanned_at, report=report))
    else:
        row.scanned_at, row.report = scanned_at, report
    db.session.commit()


def newest_scan(site: str) -> StoredScan | None:
    """The site's newest stored scan, if any."""
    row = db.session.get(SiteScan, site)
    return StoredScan(row.scanned_at, row.report) if row is not None else None
