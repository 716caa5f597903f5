"""Cookie expiry: parsing ``"13 months"`` into seconds, and display text per language."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Months and years are counted as 30 and 365 days: the figure is a declaration
# for people, and browsers store cookie lifetimes in seconds anyway.
UNIT_SECONDS = {
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}

# (singular, plural) per unit and language; "session" is the browser session.
UNIT_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "minute": ("minute", "minutes"),
        "hour": ("hour", "hours"),
        "day": ("day", "days"),
        "week": ("week", "weeks"),
        "month": ("month", "months"),
        "year": ("year", "years"),
        "session": ("Session", "Session"),
    },
    "nl": {
        "minute": ("minuut", "minuten"),
        "hour": ("uur", "uur"),
        "day": ("dag", "dagen"),
        "week": ("week", "weken"),
        "month": ("maand", "maanden"),
        "year": ("jaar", "jaar"),
        "session": ("Sessie", "Sessie"),
    },
    "de": {
        "minute": ("Minute", "Minuten"),
        "hour": ("Stunde", "Stunden"),
        "day": ("Tag", "Tage"),
        "week": ("Woche", "Wochen"),
        "month": ("Monat", "Monate"),
        "year": ("Jahr", "Jahre"),
        "session": ("Sitzung", "Sitzung"),
    },
    "fr": {
        "minute": ("minute", "minutes"),
        "hour": ("heure", "heures"),
        "day": ("jour", "jours"),
        "week": ("semaine", "semaines"),
        "month": ("mois", "mois"),
        "year": ("an", "ans"),
        "session": ("Session", "Session"),
    },
}

_EXPIRY = re.compile(r"^\s*(\d{1,6})\s+([a-z]+?)s?\s*$")


@dataclass(frozen=True)
class Expiry:
    """A parsed expiry: ``count`` of ``unit``, or the browser session (count 0)."""

    count: int
    unit: str

    @property
    def seconds(self) -> int | None:
        """Lifetime in seconds; None for a session cookie."""
        if self.unit == "session":
            return None
        return self.count * UNIT_SECONDS[self.unit]

    def text(self, language: str = "en") -> str:
        """Display text such as ``13 months`` or ``1 dag`` in ``language`` (English fallback).

        A regional variant takes its language's units: ``nl-BE`` shows ``13 maanden``.
        """
        base = language.split("-")[0].lower()
        names = UNIT_NAMES.get(language) or UNIT_NAMES.get(base) or UNIT_NAMES["en"]
        singular, plural = names[self.unit]
        if self.unit == "session":
            return singular
        # French treats 0 and 1 as singular; the other built-in languages only 1.
        one = self.count in (0, 1) if base == "fr" else self.count == 1
        return f"{self.count} {singular if one else plural}"


def parse_expiry(value: object) -> Expiry:
    """Parse ``"session"`` or ``"<n> <unit>"``; raise ValueError with the reason."""
    if not isinstance(value, str):
        raise ValueError(f"expiry must be text like '13 months' or 'session', not {value!r}")
    if value.strip().lower() == "session":
        return Expiry(0, "session")
    match = _EXPIRY.match(value.lower())
    if not match or match.group(2) not in UNIT_SECONDS:
        units = ", ".join(UNIT_SECONDS)
        raise ValueError(f"unparsable expiry {value!r}: use 'session' or '<n> <unit>' ({units})")
    return Expiry(int(match.group(1)), match.group(2))


def expiry_for_lifetime(seconds: float | None) -> Expiry:
    """The declaration for an observed lifetime: the largest unit within 5 % of it (None: the session).

    A cookie set for 2 years is seen a little under 2 years from its end, and a
    13-month one as 395 days: both are declared as their makers wrote them.
    """
    if seconds is None:
        return Expiry(0, "session")
    seconds = max(seconds, 60.0)
    for unit in ("year", "month", "week", "day", "hour"):
        count = round(seconds / UNIT_SECONDS[unit])
        if count >= 1 and abs(count * UNIT_SECONDS[unit] - seconds) <= 0.05 * seconds:
            return Expiry(count, unit)
    return Expiry(max(1, round(seconds / 60)), "minute")
