"""Where the service's files are: ``static/``, ``templates/``, ``migrations/`` and the demo inventory.

In the repository they sit at the top level, beside this package; the wheel
maps them into the package (``pyproject.toml``), so that an ordinary install
finds them without a checkout. Either way, this module is the one place that
knows.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# Installed from a wheel: inside the package. From a checkout: the repository root.
ROOT = PACKAGE if (PACKAGE / "static").is_dir() else PACKAGE.parent

STATIC = ROOT / "static"
TEMPLATES = ROOT / "templates"
MIGRATIONS = ROOT / "migrations"
DEMO_INVENTORY = ROOT / "cookies.yaml"
