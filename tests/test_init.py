"""``consent init DIR``: a new deployment that checks, starts, and keeps its secrets to its owner."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from consent import create_app
from consent.cli import cli
from consent.inventory.sites import load_inventory
from consent.ledger import keys


def init(directory: Path, *options: str):  # noqa: ANN201 - click's Result
    return CliRunner().invoke(cli, ["init", str(directory), *options], catch_exceptions=False)


def environment(directory: Path) -> dict[str, str]:
    lines = (directory / "consent.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_init_writes_a_deployment_that_checks_and_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "shop"
    result = init(target, "--site", "shop", "--name", "Shop Ltd", "--origin", "https://shop.example/")
    assert result.exit_code == 0, result.output
    assert "consent serve" in result.output
    sites = load_inventory(target / "cookies.yaml")
    assert list(sites) == ["shop"] and sites["shop"].origins == ("https://shop.example",)
    for secret in ("consent.env", "ledger-key.pem"):
        assert stat.S_IMODE((target / secret).stat().st_mode) == 0o600, secret
    values = environment(target)
    assert len(values["CONSENT_SECRET_KEY"]) >= 48 and len(values["CONSENT_ADMIN_TOKENS"]) >= 32
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    app = create_app()  # outside the demo: refuses to start unless every secret is there
    assert not app.config["DEMO"] and app.instance_path == str(target / "instance")
    with app.app_context():
        assert "shop" in app.extensions["consent.sites"]
        assert keys.private_key().public_key() is not None


def test_two_deployments_get_different_secrets(tmp_path: Path) -> None:
    assert init(tmp_path / "a").exit_code == 0 and init(tmp_path / "b").exit_code == 0
    first, second = environment(tmp_path / "a"), environment(tmp_path / "b")
    assert first["CONSENT_SECRET_KEY"] != second["CONSENT_SECRET_KEY"]
    assert (tmp_path / "a" / "ledger-key.pem").read_bytes() != (tmp_path / "b" / "ledger-key.pem").read_bytes()


def test_init_never_overwrites(tmp_path: Path) -> None:
    assert init(tmp_path).exit_code == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    again = init(tmp_path, "--site", "other")
    assert again.exit_code == 1 and "already there; nothing was written" in again.output
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()} == before


def test_init_refuses_a_bad_site_key_before_writing(tmp_path: Path) -> None:
    result = init(tmp_path / "x", "--site", "Not A Key")
    assert result.exit_code == 2 and "[a-z0-9-]{1,40}" in result.output
    assert not (tmp_path / "x").exists()
