from __future__ import annotations

from sqlalchemy import inspect

from consent.cli import cli
from consent.store.models import db


def test_db_upgrade_is_idempotent(app, runner):
    for _ in range(2):
        result = runner.invoke(cli, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert {"consent_records", "inventory_versions", "alembic_version"} <= tables


def test_db_upgrade_creates_a_fresh_sqlite_database(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    result = app.test_cli_runner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert "consent_records" in inspect(db.engine).get_table_names()
        db.engine.dispose()
