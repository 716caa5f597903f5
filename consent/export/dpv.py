"""ISO/IEC TS 27560 consent records in the W3C DPV-27560 form: built from a logged record, and read back.

One logged choice becomes one ``dpv:ConsentRecord`` (JSON-LD, the DPV context
inline): one ``dpv:Process`` per category, each optional one with its own
consent status (given, refused or withdrawn), the notice the visitor saw (the
inventory version by hash, at its absolute declaration URL), the controller,
the recipients (the category's providers), storage on the visitor's device for
the category's longest cookie expiry, the jurisdiction, rights and the
withdrawal control, with the visitor's region among the jurisdictions when
the record has one. The service's own fields (record id, action, revision,
GPC/DNT, regime, region and Sec-GPC, truncated IP, user agent, integrity fields) travel under
``consent:record``, a JSON literal in the JSON-LD sense.

``from_iso27560`` gives back the export columns of such a record, exactly, so
that an ISO 27560 export is verified with the same proof as CSV and JSON
Lines. The values that the DPV parts carry (the consent ID, the time, the
language, the page, the choice per category) are read from those parts, and a
record whose copies disagree (two times, a status that the action cannot give)
is refused as malformed: nothing recorded can be changed unnoticed. The
standard library alone: the offline verifier uses this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consent.ledger.canonical import CATEGORIES, REGIONAL_FIELDS

OPTIONAL = CATEGORIES[1:]
PROFILE = "https://w3id.org/dpv/schema/dpv-27560#record"
RECEIPT_PROFILE = "https://w3id.org/dpv/schema/dpv-27560#receipt"
OWN = "consent:record"
GIVEN, REFUSED, WITHDRAWN = "dpv:ConsentGiven", "dpv:ConsentRefused", "dpv:ConsentWithdrawn"
STATUSES = (GIVEN, REFUSED, WITHDRAWN)
# Terms whose string values name things (IRIs, compact with the prefixes below), not text.
REFERENCES = (
    "dct:conformsTo", "dct:creator", "dct:publisher", "dpv:hasDataController", "dpv:hasRecipient", "dpv:isIndicatedBy",
    "dpv:hasLegalBasis", "dpv:hasPersonalData", "dpv:hasProcessing", "dpv:hasLocation", "dpv:hasJurisdiction",
    "dpv:hasApplicableLaw", "dpv:hasNecessity", "skos:broader", "schema:url", "dpv:isExercisedAt",
)  # fmt: skip
PREFIXES = {
    "dpv": "https://w3id.org/dpv#",
    "dct": "http://purl.org/dc/terms/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "schema": "https://schema.org/",
    "pd": "https://w3id.org/dpv/pd#",
    "loc": "https://w3id.org/dpv/loc#",
    "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
}
# What each category is for, as DPV purposes; ``necessary`` rests on legitimate interest, not consent.
PURPOSES = {
    "necessary": ["dpv:ServiceProvision"],
    "functional": ["dpv:ServicePersonalisation"],
    "analytics": ["dpv:ServiceUsageAnalytics"],
    "advertising": ["dpv:PersonalisedAdvertising"],
}
PERSONAL_DATA = {"necessary": ["pd:UID"], **dict.fromkeys(OPTIONAL, ["pd:UID", "pd:BrowsingBehaviour"])}
INDICATION = {
    "accept_all": "Accept all in the cookie banner",
    "reject_all": "Reject all in the cookie banner",
    "custom": "Choices saved in the cookie preferences",
    "withdraw": "Withdraw consent in the cookie preferences",
    "opt_out": "Do Not Sell or Share My Personal Information (opt-out)",
}
# The EEA's member states, where the GDPR applies.
EEA = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK IS LI NO".split())
OWN_FIELDS = (
    "record_id", "site", "action", "necessary", "revision", "inventory_hash",
    "ip", "user_agent", "gpc", "dnt", "record_hash",
)  # fmt: skip
# REGIONAL_FIELDS, what the server applied (regime, region, Sec-GPC): null on records from before
# regions, absent in ISO 27560 exports written before regions.


def context(namespace: str) -> dict[str, Any]:
    """The JSON-LD context: DPV's prefixes, naming terms as references, ``consent:record`` a JSON literal."""
    terms: dict[str, Any] = {"@version": 1.1, **PREFIXES, "consent": namespace}
    terms.update({term: {"@id": term, "@type": "@id"} for term in REFERENCES})
    terms[OWN] = {"@id": OWN, "@type": "@json"}
    return terms


def status_of(action: str, granted: bool) -> str:
    """The DPV consent status of one optional category: withdrawn for every category a withdrawal leaves."""
    if granted:
        return GIVEN
    return WITHDRAWN if action == "withdraw" else REFUSED


def duration(seconds: int) -> str:
    """An ISO 8601 duration of whole days, else hours, minutes or seconds."""
    for size, unit in ((86400, "D"), (3600, "H"), (60, "M"), (1, "S")):
        if seconds % size == 0:
            count = seconds // size
            return f"P{count}D" if unit == "D" else f"PT{count}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")


def storage_duration(expiries: list[int | None]) -> dict[str, Any]:
    """How long a category's cookies stay: its longest expiry; the browser session if all end with it."""
    fixed = [seconds for seconds in expiries if seconds is not None]
    if fixed:
        return {"@type": ["dpv:TemporalDuration"], "rdf:value": duration(max(fixed))}
    if expiries:
        return {"@type": ["dpv:UntilEventDuration"], "rdf:value": "End of the browser session"}
    return {"@type": ["dpv:TemporalDuration"], "rdf:value": "PT0S", "skos:prefLabel": "No cookies declared"}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "provider"


@dataclass(frozen=True)
class Settings:
    """What a record says about the site beyond its inventory version: addresses, controller, jurisdiction."""

    site: str
    base: str  # the service's absolute address, no trailing slash
    controller: Mapping[str, str]
    jurisdiction: tuple[str, ...]
    preferences_url: str  # where the visitor changes or withdraws: the site's pages with the banner

    @property
    def declaration_url(self) -> str:
        return f"{self.base}/s/{self.site}/cookies"

    @property
    def gdpr(self) -> bool:
        return any(code in ("EU", "EEA") or code.split("-")[0] in EEA for code in self.jurisdiction)


class RecordBuilder:
    """Builds the DPV-27560 record of each logged record; the parts that only the inventory decides are kept."""

    def __init__(self, settings: Settings, version_of: Callable[[str], Mapping[str, Any] | None]) -> None:
        self.settings = settings
        self.version_of = version_of
        self.context = context(f"{settings.base}/ns/consent#")
        self.controller_id = f"{settings.declaration_url}#controller"
        self.parts: dict[tuple[str, str], dict[str, Any]] = {}

    def record(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The DPV-27560 record of one logged record (the export's columns, booleans as booleans)."""
        parts = self._parts(row["inventory_hash"], row["language"])
        action, moment = row["action"], row["recorded_at"]
        processes = [parts["processes"]["necessary"]]
        for category in OPTIONAL:
            status = {
                "@type": [status_of(action, row[category])],
                "dpv:isIndicatedAtTime": moment,
                "dpv:isIndicatedBy": "dpv:DataSubject",
                "dpv:isExercisedAt": row["page_url"],
                "dpv:hasIndicationMethod": INDICATION.get(action, action),
                "dpv:hasDuration": parts["consent_duration"],
            }
            processes.append({**parts["processes"][category], "dpv:hasConsentStatus": [status]})
        return {
            "@context": self.context,
            "@id": self._record_id(row),
            "@type": "dpv:ConsentRecord",
            "dct:identifier": self._record_id(row),
            "dct:conformsTo": PROFILE,
            "dct:created": moment,
            "dct:creator": self.controller_id,
            "dct:language": row["language"],
            "dpv:hasDataSubject": {"@type": ["dpv:DataSubject"], "dct:identifier": row["consent_id"]},
            "dpv:hasDataController": [self.controller_id],
            "dpv:hasJurisdiction": _jurisdictions(parts["jurisdiction"], row.get("region")),
            **parts["law"],
            "dpv:hasNotice": [parts["notice"]],
            "dpv:hasConsentControl": parts["control"],
            "dpv:hasRight": parts["rights"],
            "dpv:hasEntity": parts["entities"],
            "dpv:hasProcess": processes,
            OWN: {name: row[name] for name in (*OWN_FIELDS, *REGIONAL_FIELDS)},
        }

    def _record_id(self, row: Mapping[str, Any]) -> str:
        # The visitor's history at the service, where this record is one entry.
        return f"{self.settings.base}/api/v1/sites/{row['site']}/consents/{row['consent_id']}#record-{row['record_id']}"

    def _parts(self, inventory_hash: str, language: str) -> dict[str, Any]:
        key = (inventory_hash, language)
        if key not in self.parts:
            if len(self.parts) > 64:
                self.parts.clear()  # a long export over many versions and languages stays bounded
            self.parts[key] = self._build(inventory_hash, language)
        return self.parts[key]

    def _build(self, inventory_hash: str, language: str) -> dict[str, Any]:
        """Everything in a record that follows from the inventory version, the language and the settings."""
        settings = self.settings
        version = self.version_of(inventory_hash) or {}
        default = (version.get("languages") or [language])[0]

        def text(texts: Mapping[str, str]) -> str:
            return texts.get(language) or texts.get(default) or next(iter(texts.values()), "")

        cookies = version.get("cookies", [])
        # The site itself (the provider of the banner's own cookie) is the controller, not a third party.
        own_names = {str(name) for name in (settings.controller.get("name"), version.get("name")) if name}
        providers: dict[str, str] = dict.fromkeys(own_names, self.controller_id)
        for cookie in cookies:
            if cookie["provider"] not in providers:
                name, number = slug(cookie["provider"]), 2
                while f"{settings.declaration_url}#provider-{name}" in providers.values():
                    name, number = f"{slug(cookie['provider'])}-{number}", number + 1
                providers[cookie["provider"]] = f"{settings.declaration_url}#provider-{name}"
        consent_basis = ["dpv:Consent", "eu-gdpr:A6-1-a"] if settings.gdpr else ["dpv:Consent"]
        necessary_basis = ["dpv:LegitimateInterest", "eu-gdpr:A6-1-f"] if settings.gdpr else ["dpv:LegitimateInterest"]
        categories = {category["key"]: category for category in version.get("categories", [])}
        processes = {}
        for key in CATEGORIES:
            category = categories.get(key, {})
            own = [cookie for cookie in cookies if cookie["category"] == key]
            recipients = sorted({providers[cookie["provider"]] for cookie in own})
            purpose = {
                "@type": ["dpv:Purpose"],
                "skos:broader": PURPOSES[key],
                "skos:prefLabel": text(category.get("label", {})) or key,
            }
            if category.get("description"):
                purpose["skos:definition"] = text(category["description"])
            processes[key] = {
                "@type": "dpv:Process",
                "dct:identifier": key,
                "dpv:hasPurpose": [purpose],
                "dpv:hasPersonalData": PERSONAL_DATA[key],
                "dpv:hasProcessing": ["dpv:Collect", "dpv:Store", "dpv:Use"]
                + (["dpv:Share"] if set(recipients) - {self.controller_id} else []),
                "dpv:hasDataController": [self.controller_id],
                "dpv:hasStorageCondition": [
                    {"@type": ["dpv:StorageLocation"], "dpv:hasLocation": "dpv:WithinDevice"},
                    {
                        "@type": ["dpv:StorageDuration"],
                        "dpv:hasDuration": storage_duration([c["expiry"]["seconds"] for c in own]),
                    },
                ],
                "dpv:hasRecipient": recipients,
                "dpv:hasLegalBasis": necessary_basis if key == "necessary" else consent_basis,
                **(
                    {"dpv:hasNecessity": "dpv:Required"} if key == "necessary" else {"dpv:hasNecessity": "dpv:Optional"}
                ),
            }
        controller = settings.controller
        contact: dict[str, Any] = {"@type": ["schema:ContactPoint"]}
        for name, term in (("email", "schema:email"), ("phone", "schema:telephone"), ("url", "schema:url")):
            if controller.get(name):
                contact[term] = controller[name]
        contacts = [contact] if len(contact) > 1 else []
        if controller.get("address"):
            contacts.append({"@type": ["schema:PostalAddress"], "schema:streetAddress": controller["address"]})
        entity: dict[str, Any] = {
            "@id": self.controller_id,
            "@type": ["dpv:DataController", "dpv:Organisation"],
            "dpv:hasIdentifier": self.controller_id,
            "dpv:hasName": controller.get("name") or version.get("name") or settings.site,
            "schema:contactPoint": contacts,
        }
        if controller.get("url"):
            entity["schema:url"] = controller["url"]
        entities = [entity]
        for name, identifier in providers.items():
            if identifier == self.controller_id:
                continue
            entities.append(
                {"@id": identifier, "@type": ["dpv:Recipient"], "dpv:hasIdentifier": identifier, "dpv:hasName": name}
            )
        # Access and erasure are asked of the controller: by email where there is one, else on its site.
        ask = f"mailto:{controller['email']}" if controller.get("email") else controller.get("url") or settings.base
        withdraw = {
            "@type": ["dpv:DataSubjectRight", *(["eu-gdpr:A7-3"] if settings.gdpr else [])],
            "dct:title": "Right to withdraw consent",
            "dpv:isExercisedAt": settings.preferences_url,
        }
        rights = [withdraw]
        if settings.gdpr:
            for article, title in (("A15", "Right of access"), ("A17", "Right to erasure")):
                rights.append(
                    {
                        "@type": ["dpv:DataSubjectRight", f"eu-gdpr:{article}"],
                        "dct:title": title,
                        "dpv:isExercisedAt": ask,
                    }
                )
        return {
            "processes": processes,
            "entities": entities,
            "rights": rights,
            "jurisdiction": [f"loc:{code}" for code in settings.jurisdiction],
            "law": {"dpv:hasApplicableLaw": ["eu-gdpr:GDPR"]} if settings.gdpr else {},
            "notice": {
                "@type": ["dpv:ConsentNotice"],
                "dct:identifier": inventory_hash,
                "dct:hasVersion": str(version.get("revision", "")),
                "dct:language": language,
                "schema:url": settings.declaration_url,
            },
            "control": {
                "@type": ["dpv:ProvideConsent", "dpv:WithdrawConsent"],
                "dpv:isExercisedAt": settings.preferences_url,
                "skos:prefLabel": "Cookie preferences, opened from the banner on every page of the site",
            },
            "consent_duration": {
                "@type": ["dpv:TemporalDuration"],
                "rdf:value": f"P{version.get('consent_max_age_days', 180)}D",
            },
        }


def _jurisdictions(site: list[str], region: str | None) -> list[str]:
    """The site's jurisdictions, and the visitor's region (``loc:US-CA``) where the record has one."""
    if region is None or f"loc:{region}" in site:
        return site
    return [*site, f"loc:{region}"]


def receipt(builder: RecordBuilder, consent_id: str, records: list[dict[str, Any]], created: str) -> dict[str, Any]:
    """A visitor's history as a DPV-27560 consent receipt: their records, each whole, oldest first."""
    settings = builder.settings
    return {
        "@context": builder.context,
        "@id": f"{settings.base}/api/v1/sites/{settings.site}/consents/{consent_id}",
        "@type": "dpv:ConsentReceipt",
        "dct:identifier": f"{settings.base}/api/v1/sites/{settings.site}/consents/{consent_id}",
        "dct:conformsTo": RECEIPT_PROFILE,
        "dct:created": created,
        "dct:publisher": builder.controller_id,
        "dpv:hasRecordOfActivity": records,
    }


def from_iso27560(document: dict[str, Any]) -> dict[str, Any]:
    """The export columns of a DPV-27560 record written by ``RecordBuilder``; ValueError if its copies disagree."""
    own = document[OWN]
    moment = document["dct:created"]
    record: dict[str, Any] = {name: own[name] for name in OWN_FIELDS}
    record.update({name: own.get(name) for name in REGIONAL_FIELDS})
    region = record["region"]
    if region is not None and f"loc:{region}" not in document["dpv:hasJurisdiction"]:
        raise ValueError("the jurisdictions do not hold the record's region")
    record["consent_id"] = document["dpv:hasDataSubject"]["dct:identifier"]
    record["recorded_at"] = moment
    record["language"] = document["dct:language"]
    notices = document["dpv:hasNotice"]
    if len(notices) != 1 or notices[0]["dct:identifier"] != own["inventory_hash"]:
        raise ValueError("the notice is not the inventory version the record names")
    pages = set()
    seen = set()
    for process in document["dpv:hasProcess"]:
        key = process["dct:identifier"]
        if key == "necessary":
            if "dpv:hasConsentStatus" in process:
                raise ValueError("the necessary process carries a consent status")
            seen.add(key)
            continue
        if key not in OPTIONAL or key in seen:
            raise ValueError(f"unexpected process {key!r}")
        seen.add(key)
        (status,) = process["dpv:hasConsentStatus"]
        (kind,) = [term for term in status["@type"] if term in STATUSES]
        granted = kind == GIVEN
        if status_of(own["action"], granted) != kind or status["dpv:isIndicatedAtTime"] != moment:
            raise ValueError(f"the consent status of {key} does not fit the record")
        record[key] = granted
        pages.add(status["dpv:isExercisedAt"])
    if seen != set(CATEGORIES) or len(pages) != 1:
        raise ValueError("the processes do not describe one choice over every category")
    record["page_url"] = pages.pop()
    return record
