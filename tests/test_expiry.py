from __future__ import annotations

import pytest

from consent.inventory.expiry import parse_expiry


@pytest.mark.parametrize(
    ("text", "seconds", "en", "nl", "de", "fr"),
    [
        ("13 months", 13 * 30 * 86400, "13 months", "13 maanden", "13 Monate", "13 mois"),
        ("1 day", 86400, "1 day", "1 dag", "1 Tag", "1 jour"),
        ("30 minutes", 1800, "30 minutes", "30 minuten", "30 Minuten", "30 minutes"),
        ("1 year", 365 * 86400, "1 year", "1 jaar", "1 Jahr", "1 an"),
        ("2 years", 2 * 365 * 86400, "2 years", "2 jaar", "2 Jahre", "2 ans"),
        ("1 hour", 3600, "1 hour", "1 uur", "1 Stunde", "1 heure"),
        ("3 weeks", 21 * 86400, "3 weeks", "3 weken", "3 Wochen", "3 semaines"),
        ("session", None, "Session", "Sessie", "Sitzung", "Session"),
    ],
)
def test_expiry_seconds_and_plural_text(text, seconds, en, nl, de, fr):
    expiry = parse_expiry(text)
    assert expiry.seconds == seconds
    assert [expiry.text(lang) for lang in ("en", "nl", "de", "fr")] == [en, nl, de, fr]


def test_unknown_language_falls_back_to_english():
    assert parse_expiry("2 days").text("pt") == "2 days"


@pytest.mark.parametrize("bad", ["3 fortnights", "months", "13", "-1 day", "1.5 days", "", 13, None])
def test_unparsable_expiry_is_refused_with_the_value(bad):
    with pytest.raises(ValueError, match="expiry"):
        parse_expiry(bad)
