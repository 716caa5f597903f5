"""Regimes per visitor region: which consent model a site applies where, and the lookup.

A site maps regions (ISO 3166-1 countries such as ``DE``, ISO 3166-2
subdivisions such as ``US-CA``, or the groups ``EU`` and ``EEA``) to one of
four regimes, strictest first: ``opt-in`` (ask before anything optional runs),
``opt-out`` (optional categories run until the visitor opts out), ``notice``
(inform, block nothing) and ``none`` (no banner).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REGIMES = ("opt-in", "opt-out", "notice", "none")
OPT_IN = "opt-in"
# Every ISO 3166-1 alpha-2 code officially assigned (XK, used by CDNs for Kosovo, included).
COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
    BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
    FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
    IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
    ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
    """.split()
)
EU = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
    "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
)  # fmt: skip
EEA = (*EU, "IS", "LI", "NO")
GROUPS: dict[str, tuple[str, ...]] = {"EU": EU, "EEA": EEA}
# A key of ``regions:``: a country, a subdivision (its part after the dash: 1-3 letters or digits), or a group.
REGION_KEY = re.compile(r"^(?P<country>[A-Z]{2})(?:-(?P<subdivision>[A-Z0-9]{1,3}))?$")


def region_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a key of ``regions:``, or None."""
    if key in GROUPS:
        return None
    match = REGION_KEY.match(key)
    if match is None:
        return f"{key!r} is not a country (DE), a subdivision (US-CA), EU or EEA (upper case)"
    if match["country"] not in COUNTRIES:
        return f"{key!r}: {match['country']!r} is not an ISO 3166-1 country code"
    return None


def strictest(regimes: list[str] | tuple[str, ...]) -> str:
    """The strictest of ``regimes`` (opt-in when there are none)."""
    return min(regimes, key=REGIMES.index, default=OPT_IN)


def grants_by_default(regime: str) -> bool:
    """Whether optional categories run before any choice under ``regime`` (Consent Mode's ``granted``)."""
    return regime != OPT_IN


@dataclass(frozen=True)
class RegionPolicy:
    """A site's regions → regimes, the regime for unknown regions, and what goes with them."""

    regions: Mapping[str, str] = field(default_factory=dict)
    default_regime: str = OPT_IN
    reask_after_refusal_days: int = 180
    purposes_revision: int = 1
    wait_for_update: int = 500
    ads_data_redaction: bool = False
    url_passthrough: bool = False
    # Whether the site's file set any of the keys: only then does the banner vary by region.
    configured: bool = False

    def regime_for(self, region: str | None) -> str:
        """The regime for ``region``: its subdivision, its country, a group holding the country, else the default."""
        if not region:
            return self.default_regime
        if region in self.regions:
            return self.regions[region]
        country = region.split("-", 1)[0]
        if country in self.regions:
            return self.regions[country]
        for group, members in GROUPS.items():  # EU before EEA: the narrower group decides
            if group in self.regions and country in members:
                return self.regions[group]
        return self.default_regime

    @property
    def regional(self) -> bool:
        """Whether the regime can depend on where the visitor is (some region mapped)."""
        return bool(self.regions)

    def consent_mode(self) -> dict[str, Any]:
        """Google Consent Mode's settings: one region-scoped default per regime mapped, and the global default."""
        by_regime: dict[str, list[str]] = {}
        for key, regime in self.regions.items():
            if key in GROUPS:
                continue
            by_regime.setdefault(regime, []).append(key)
        for group in GROUPS:
            if group not in self.regions:
                continue
            # A group's members take its regime unless a country of their own says otherwise.
            listed = {region for regions in by_regime.values() for region in regions}
            members = [c for c in GROUPS[group] if c not in listed]
            by_regime.setdefault(self.regions[group], []).extend(members)
        entries = [
            {"region": sorted(set(regions)), "granted": grants_by_default(regime)}
            for regime, regions in sorted(by_regime.items(), key=lambda item: REGIMES.index(item[0]))
        ]
        return {
            "wait_for_update": self.wait_for_update,
            "ads_data_redaction": self.ads_data_redaction,
            "url_passthrough": self.url_passthrough,
            "granted": grants_by_default(self.default_regime),
            "regions": entries,
        }

    def public(self) -> dict[str, Any]:
        """The policy as the public inventory carries it (only for a site that configures it)."""
        return {
            "regions": dict(self.regions),
            "default_regime": self.default_regime,
            "reask_after_refusal_days": self.reask_after_refusal_days,
            "purposes_revision": self.purposes_revision,
            "consent_mode": {
                "wait_for_update": self.wait_for_update,
                "ads_data_redaction": self.ads_data_redaction,
                "url_passthrough": self.url_passthrough,
            },
        }
