"""The service's configuration in tests, and migrating a test database: one place for both.

The run's ledger signing key is made here, once; the services tests start
inherit it through the environment.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask_migrate import upgrade

from consent import create_app
from consent.ledger.keys import generate_pem, write_private
from consent.store.models import db

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token"
LEDGER_KEY = Path(tempfile.mkdtemp(prefix="consent-test-")) / "ledger-key.pem"
write_private(LEDGER_KEY, generate_pem())
os.environ["CONSENT_LEDGER_KEY_FILE"] = str(LEDGER_KEY)


def app_config(url: str, **overrides: Any) -> dict[str, Any]:
    """The configuration of a test app on the database at ``url``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": url,
        "ADMIN_TOKENS": ADMIN_TOKEN,
        "INVENTORY": str(ROOT / "cookies.yaml"),
        "LEDGER_KEY_FILE": str(LEDGER_KEY),
        **overrides,
    }


def migrate(url: str) -> None:
    """Create the schema in an empty database, as ``consent db upgrade`` does."""
    app = create_app(app_config(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
