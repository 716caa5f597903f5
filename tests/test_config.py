"""The one configuration table: what the docs list is what the service reads, with the documented types."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consent import config

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def documented() -> dict[str, tuple[str, str, str]]:
    """variable -> (default, type, meaning), read from the table under "## Configuration"."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| `(CONSENT_[A-Z_]+)` \| (.*?) \| (\w+) \| (.*) \|", line)
        if match:
            rows[match[1]] = (match[2], match[3], match[4])
    return rows


def test_the_docs_list_every_setting_and_nothing_else() -> None:
    rows = documented()
    assert set(rows) == {setting.variable for setting in config.SETTINGS}
    for setting in config.SETTINGS:
        default, kind, meaning = rows[setting.variable]
        assert kind == setting.type.__name__, setting.variable
        assert meaning.startswith(setting.doc), setting.variable
        if setting.default in (None, "") or setting.name == "SECRET_KEY":
            assert not default.startswith("`"), setting.variable
        else:
            shown = default.strip("`")
            assert config.parse_value(setting, shown) == setting.default, setting.variable


def test_the_service_starts_from_the_table(make_app) -> None:
    app = make_app()
    for setting in config.SETTINGS:
        if setting.scope == "service" and setting.name not in ("DATABASE_URL", "ADMIN_TOKENS", "SECRET_KEY"):
            assert setting.name in app.config, setting.name


def test_variables_are_parsed_by_their_type() -> None:
    given = config.from_environment(
        {
            "CONSENT_SEAL_INTERVAL": "0",
            "CONSENT_RATELIMIT_ENABLED": "false",
            "CONSENT_TRUSTED_PROXIES": "2",
            "CONSENT_PUBLIC_URL": "https://consent.example.com",
            "OTHER": "ignored",
        }
    )
    assert given == {
        "SEAL_INTERVAL": 0.0,
        "RATELIMIT_ENABLED": False,
        "TRUSTED_PROXIES": 2,
        "PUBLIC_URL": "https://consent.example.com",
    }


def test_a_value_of_the_wrong_type_names_its_variable() -> None:
    with pytest.raises(config.ConfigurationError, match="CONSENT_TRUSTED_PROXIES: expected int, got 'two'"):
        config.from_environment({"CONSENT_TRUSTED_PROXIES": "two"})
