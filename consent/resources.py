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
INSTALLED = (PACKAGE / "static").is_dir()
ROOT = PACKAGE if INSTALLED else PACKAGE.parent

STATIC = ROOT / "static"
TEMPLATES = ROOT / "templates"
MIGRATIONS = ROOT / "migrations"
DEMO_INVENTORY = ROOT / "cookies.yaml"


def instance_folder(configured: str | None) -> Path:
    """Where the SQLite database and the demo's key live: ``CONSENT_INSTANCE``, else ``instance/``.

    In a checkout that is the repository's ``instance/``; an installed service
    keeps it in the directory it runs from, never inside the installed package.
    """
    if configured:
        return Path(configured).resolve()
    return (Path.cwd() if INSTALLED else ROOT) / "instance"
