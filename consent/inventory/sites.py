"""The cookie inventory: ``cookies.yaml`` files loaded, validated and hashed once at start-up."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, current_app
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from consent.inventory.expiry import Expiry, parse_expiry
from consent.inventory.regimes import REGIMES, RegionPolicy, region_key_problem, strictest
from consent.inventory.texts import (
    BANNER_TEXTS,
    CATEGORIES,
    CATEGORY_TEXTS,
    CONSENT_COOKIE_PURPOSE,
    REGIME_TEXTS,
)
from consent.resources import DEMO_INVENTORY, ROOT

CONSENT_COOKIE = "consent"
SITE_KEY = re.compile(r"^[a-z0-9-]{1,40}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


class InventoryError(Exception):
    """One or more inventory files are invalid; ``errors`` holds located messages."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _origin(value: str) -> None:
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ValidationError(f"{value!r} is not an origin like https://shop.example or http://localhost:8000")


def _policy_url(value: str) -> None:
    # The banner puts this into a link on the host page: a javascript: or data:
    # address would run there. Browsers drop tabs and newlines inside addresses
    # and read a backslash as a slash, so those are refused outright.
    reason = f"{value!r} is not an https:// or http:// address or a relative path like /privacy"
    if any(char.isspace() or not char.isprintable() or char == "\\" for char in value):
        raise ValidationError(reason + " (no spaces, control characters or backslashes)")
    if value.lower().startswith(("https://", "http://")):
        if not urlsplit(value).hostname:
            raise ValidationError(reason)
        return
    # A relative path: no scheme before the first /, ? or #, and not //host (another site).
    if value.startswith("//") or ":" in re.split(r"[/?#]", value, maxsplit=1)[0]:
        raise ValidationError(reason)


def validate_public_url(value: str) -> None:
    """Refuse anything but the service's own address: ``https://consent.example`` (a path is allowed)."""
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or any(char.isspace() or not char.isprintable() for char in value)
    ):
        raise ValidationError(f"{value!r} is not the service's address like https://consent.example.com")


def _expiry(value: str) -> None:
    try:
        parse_expiry(value)
    except ValueError as error:
        raise ValidationError(str(error)) from error


def _language(value: str) -> None:
    if not LANGUAGE.match(value):
        raise ValidationError(f"{value!r} is not a language code like en or pt-BR")


Texts = fields.Dict(keys=fields.String(validate=_language), values=fields.String())
# ISO 3166-1 alpha-2 countries, ISO 3166-2 subdivisions (US-CA), and the EU and the EEA as wholes.
JURISDICTION = re.compile(r"^(EU|EEA|[A-Z]{2}(-[A-Z0-9]{1,3})?)$")
DEFAULT_JURISDICTION = ("EU",)
PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{2,39}$")


def _jurisdiction(value: str) -> None:
    if not JURISDICTION.match(value):
        raise ValidationError(f"{value!r} is not a country (DE), a subdivision (US-CA), EU or EEA")


def _web_address(value: str) -> None:
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or any(char.isspace() or not char.isprintable() for char in value)
    ):
        raise ValidationError(f"{value!r} is not an https:// or http:// address")


class StrictBoolean(fields.Boolean):
    """A true or false, nothing else: ``fields.Boolean`` takes 1 and 0, which equal True and False."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


class ConsentModeSchema(Schema):
    """``consent_mode:``: Google Consent Mode settings the banner applies with its defaults."""

    wait_for_update = fields.Integer(load_default=500, strict=True, validate=validate.Range(0, 10000))
    ads_data_redaction = StrictBoolean(load_default=False)
    url_passthrough = StrictBoolean(load_default=False)


# The keys that make a site regional; without any of them it is opt-in everywhere, as before regions.
REGION_KEYS = ("regions", "default_regime", "reask_after_refusal_days", "purposes_revision", "consent_mode")


class ControllerSchema(Schema):
    """Who is responsible for the site's processing: named in every ISO/IEC TS 27560 record."""

    name = fields.String(validate=validate.Length(1, 200))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    address = fields.String(validate=validate.Length(1, 500))
    url = fields.String(validate=_web_address)
    phone = fields.String(
        validate=validate.Regexp(PHONE, error="{input!r} is not a telephone number like +31 20 123 4567")
    )


class CategorySchema(Schema):
    label = fields.Dict(keys=fields.String(validate=_language), values=fields.String())
    description = fields.Dict(keys=fields.String(validate=_language), values=fields.String())


class CategoriesSchema(Schema):
    necessary = fields.Nested(CategorySchema)
    functional = fields.Nested(CategorySchema)
    analytics = fields.Nested(CategorySchema)
    advertising = fields.Nested(CategorySchema)


class CookieSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    match = fields.String(load_default="exact", validate=validate.OneOf(["exact", "prefix", "regex"]))
    category = fields.String(
        required=True,
        validate=validate.OneOf(CATEGORIES, error="unknown category {input!r} (one of {choices})"),
    )
    provider = fields.String(required=True, validate=validate.Length(1, 200))
    purpose = fields.Dict(keys=fields.String(validate=_language), values=fields.String(), required=True)
    expiry = fields.String(required=True, validate=_expiry)

    @validates_schema
    def _regex(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("match") == "regex":
            try:
                re.compile(data["name"])
            except re.error as error:
                raise ValidationError({"name": [f"bad regex {data['name']!r}: {error}"]}) from error


class SiteSchema(Schema):
    site = fields.String(
        required=True,
        validate=validate.Regexp(SITE_KEY, error="site key must match [a-z0-9-]{{1,40}}"),
    )
    name = fields.String(required=True, validate=validate.Length(1, 200))
    origins = fields.List(fields.String(validate=_origin), required=True, validate=validate.Length(1))
    policy_url = fields.String(load_default=None, validate=_policy_url)
    # The address banners of this site post to; else CONSENT_PUBLIC_URL (see consent.embed.banner).
    public_url = fields.String(load_default=None, validate=validate_public_url)
    revision = fields.Integer(required=True, strict=True, validate=validate.Range(1))
    consent_max_age_days = fields.Integer(load_default=180, strict=True, validate=validate.Range(1, 3650))
    retention_days = fields.Integer(load_default=1825, strict=True, validate=validate.Range(1, 36500))
    languages = fields.List(fields.String(validate=_language), load_default=lambda: ["en"], validate=validate.Length(1))
    texts = fields.Dict(keys=fields.String(validate=_language), values=fields.Dict(), load_default=dict)
    cookie_domain = fields.String(load_default=None, allow_none=True)
    layout = fields.String(load_default="bar", validate=validate.OneOf(["bar", "box"]))
    categories = fields.Nested(CategoriesSchema, load_default=dict)
    cookies = fields.List(fields.Nested(CookieSchema), load_default=list)
    controller = fields.Nested(ControllerSchema, load_default=None)
    jurisdiction = fields.List(
        fields.String(validate=_jurisdiction),
        load_default=lambda: list(DEFAULT_JURISDICTION),
        validate=validate.Length(1),
    )
    # Regimes by visitor region (consent.inventory.regimes); checked key by key in _consistent.
    regions = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=None)
    default_regime = fields.String(
        load_default=None, validate=validate.OneOf(REGIMES, error="{input!r} is not a regime (one of {choices})")
    )
    # Left out: None, so that a file without any of these keys is told apart (defaults in _region_policy).
    reask_after_refusal_days = fields.Integer(load_default=None, strict=True, validate=validate.Range(0, 3650))
    purposes_revision = fields.Integer(load_default=None, strict=True, validate=validate.Range(1))
    consent_mode = fields.Nested(ConsentModeSchema, load_default=None)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, Any] = {}
        default = data["languages"][0]
        seen: set[str] = set()
        for index, cookie in enumerate(data["cookies"]):
            problems: dict[str, list[str]] = {}
            if cookie["name"] in seen or cookie["name"] == CONSENT_COOKIE:
                problems["name"] = [f"duplicate cookie name {cookie['name']!r}"]
            seen.add(cookie["name"])
            if default not in cookie["purpose"]:
                problems["purpose"] = [f"missing text for the default language {default!r}"]
            if problems:
                errors.setdefault("cookies", {})[index] = problems
        for key, category in data["categories"].items():
            for part in ("label", "description"):
                if part in category and default not in category[part]:
                    message = f"missing text for the default language {default!r}"
                    errors.setdefault("categories", {}).setdefault(key, {})[part] = [message]
        regional = any(data[key] is not None for key in REGION_KEYS)
        for language, strings in data["texts"].items():
            unknown = sorted(set(strings) - set(BANNER_TEXTS["en"]) - set(REGIME_TEXTS["en"]))
            regime_only = sorted(set(strings) & set(REGIME_TEXTS["en"]))
            if language not in data["languages"]:
                errors.setdefault("texts", {})[language] = [f"language {language!r} is not in languages"]
            elif unknown:
                errors.setdefault("texts", {})[language] = [f"unknown text key {unknown[0]!r}"]
            elif regime_only and not regional:
                message = f"text key {regime_only[0]!r} is used only by a site with regions (see regions:)"
                errors.setdefault("texts", {})[language] = [message]
        for key, regime in (data["regions"] or {}).items():
            problem = region_key_problem(str(key))
            if problem is None and regime not in REGIMES:
                problem = f"{regime!r} is not a regime (one of {', '.join(REGIMES)})"
            if problem is not None:
                errors.setdefault("regions", {})[key] = [problem]
        if (data["purposes_revision"] or 1) > data["revision"]:
            message = f"{data['purposes_revision']} is above the site's revision {data['revision']}"
            errors["purposes_revision"] = [message]
        if data["cookie_domain"] is not None and not re.match(r"^\.?[a-z0-9.-]+\.[a-z]{2,}$", data["cookie_domain"]):
            errors["cookie_domain"] = [f"{data['cookie_domain']!r} is not a domain like .example.com"]
        if errors:
            raise ValidationError(errors)


SITE_SCHEMA = SiteSchema()


@dataclass(frozen=True)
class Cookie:
    """One declared cookie; ``expiry`` parsed."""

    name: str
    match: str
    category: str
    provider: str
    purpose: dict[str, str]
    expiry: Expiry

    def matches(self, cookie_name: str) -> bool:
        """Whether a cookie the browser holds is this declared one."""
        if self.match == "prefix":
            return cookie_name.startswith(self.name)
        if self.match == "regex":
            return re.fullmatch(self.name, cookie_name) is not None
        return cookie_name == self.name


@dataclass(frozen=True)
class Site:
    """A validated site inventory and its public JSON, hashed canonically."""

    key: str
    name: str
    origins: tuple[str, ...]
    policy_url: str
    revision: int
    consent_max_age_days: int
    retention_days: int
    languages: tuple[str, ...]
    cookie_domain: str | None
    layout: str
    source: str
    public_url: str | None
    cookies: tuple[Cookie, ...]
    public: dict[str, Any] = field(repr=False)
    hash: str = ""
    # Not part of the public inventory (so not of its hash): who answers for the site, and where.
    controller: Mapping[str, str] = field(default_factory=dict)
    jurisdiction: tuple[str, ...] = DEFAULT_JURISDICTION
    # Regimes by region; the default is opt-in everywhere, as for a file without regions.
    policy: RegionPolicy = field(default_factory=RegionPolicy)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def pick_language(self, wanted: str | None) -> str:
        """The site language closest to ``wanted`` (``nl-BE`` → ``nl``), else the default."""
        if wanted:
            wanted = wanted.strip().lower()
            for language in self.languages:
                if language.lower() == wanted:
                    return language
            for language in self.languages:
                if language.split("-")[0].lower() == wanted.split("-")[0]:
                    return language
        return self.default_language


def _builtin(texts: Mapping[str, str], language: str) -> str | None:
    """A built-in text for ``language`` or, for a regional variant like ``nl-BE``, its base language."""
    return texts.get(language) or texts.get(language.split("-")[0])


def _localised(given: Mapping[str, str], builtin: Mapping[str, str], languages: tuple[str, ...]) -> dict[str, str]:
    """A text for every site language: the site's own, the built-in one, then the default's."""
    default = languages[0]
    fallback = given.get(default) or _builtin(builtin, default) or builtin.get("en", "")
    return {lang: given.get(lang) or _builtin(builtin, lang) or fallback for lang in languages}


def _region_policy(data: dict[str, Any]) -> RegionPolicy:
    """The site's regimes by region, with the defaults of the keys left out."""
    regions = {str(key): str(regime) for key, regime in (data["regions"] or {}).items()}
    mode = data["consent_mode"] or {}
    return RegionPolicy(
        regions=regions,
        default_regime=data["default_regime"] or strictest(tuple(regions.values())),
        reask_after_refusal_days=180 if data["reask_after_refusal_days"] is None else data["reask_after_refusal_days"],
        purposes_revision=data["purposes_revision"] or 1,
        wait_for_update=mode.get("wait_for_update", 500),
        ads_data_redaction=mode.get("ads_data_redaction", False),
        url_passthrough=mode.get("url_passthrough", False),
        configured=any(data[key] is not None for key in REGION_KEYS),
    )


def _public(data: dict[str, Any], policy_url: str, policy: RegionPolicy) -> dict[str, Any]:
    """The inventory as served to browsers: every text resolved for every site language.

    A site with regions carries them and the regimes' texts too; one without has
    exactly the document (and so the hash) it had before regions existed.
    """
    languages = tuple(data["languages"])
    text_defaults = {**BANNER_TEXTS["en"], **(REGIME_TEXTS["en"] if policy.configured else {})}
    categories = []
    for key in CATEGORIES:
        given = data["categories"].get(key, {})
        categories.append(
            {
                "key": key,
                "label": _localised(given.get("label", {}), CATEGORY_TEXTS[key]["label"], languages),
                "description": _localised(given.get("description", {}), CATEGORY_TEXTS[key]["description"], languages),
            }
        )
    own = {
        "name": CONSENT_COOKIE,
        "match": "exact",
        "category": "necessary",
        "provider": data["name"],
        "purpose": dict(CONSENT_COOKIE_PURPOSE),
        "expiry": f"{data['consent_max_age_days']} days",
    }
    cookies = []
    for cookie in [own, *data["cookies"]]:
        expiry = parse_expiry(cookie["expiry"])
        cookies.append(
            {
                "name": cookie["name"],
                "match": cookie["match"],
                "category": cookie["category"],
                "provider": cookie["provider"],
                "purpose": _localised(cookie["purpose"], {}, languages),
                "expiry": {
                    "text": {lang: expiry.text(lang) for lang in languages},
                    "seconds": expiry.seconds,
                },
            }
        )
    texts = {
        lang: {
            key: str(data["texts"].get(lang, {}).get(key) or _builtin_text(lang, key) or value)
            for key, value in text_defaults.items()
        }
        for lang in languages
    }
    regimes = {"regimes": policy.public()} if policy.configured else {}
    return {
        "site": data["site"],
        "name": data["name"],
        "revision": data["revision"],
        "policy_url": policy_url,
        "languages": list(languages),
        "consent_max_age_days": data["consent_max_age_days"],
        "retention_days": data["retention_days"],
        "cookie_domain": data["cookie_domain"],
        "layout": data["layout"],
        "categories": categories,
        "cookies": cookies,
        "texts": texts,
        **regimes,
    }


def _builtin_text(language: str, key: str) -> str | None:
    """A built-in banner or regime text in ``language`` or its base language."""
    for table in (BANNER_TEXTS, REGIME_TEXTS):
        texts = table.get(language) or table.get(language.split("-")[0]) or {}
        if key in texts:
            return texts[key]
    return None


def canonical_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of the document as canonical JSON (sorted keys, no spaces, UTF-8)."""
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _flatten(errors: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from _flatten(value, path if key == "_schema" else (*path, key))
    elif isinstance(errors, list):
        for message in errors:
            yield from _flatten(message, path)
    else:
        yield path, str(errors)


def _line(document: Any, path: tuple[Any, ...]) -> int:
    """1-based line of ``path`` in the parsed YAML, or of its nearest present parent."""
    line, node = 1, document
    for step in path:
        lc = getattr(node, "lc", None)
        if isinstance(node, Mapping) and step in node and lc is not None:
            line = lc.key(step)[0] + 1
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node) and lc is not None:
            line = lc.item(step)[0] + 1
            node = node[step]
        else:
            break
    return line


def _message(path: tuple[Any, ...], message: str) -> str:
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
    if message == "Unknown field.":
        if len(path) == 2 and path[0] == "categories":
            return f"unknown category {path[-1]!r} (one of {', '.join(CATEGORIES)})"
        return f"unknown key {path[-1]!r}" + (f" in {where.rsplit('.', 1)[0]}" if len(path) > 1 else "")
    if message == "Missing data for required field.":
        return f"{where}: missing"
    return f"{where}: {message}" if where else message


def load_site(path: Path) -> Site:
    """Load and validate one inventory file; raise InventoryError with located messages."""
    try:
        document = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise InventoryError([f"{path}:{line}: {error.problem or error.context}"]) from error
    except (OSError, UnicodeDecodeError) as error:
        raise InventoryError([f"{path}: cannot read: {error}"]) from error
    if not isinstance(document, Mapping):
        raise InventoryError([f"{path}:1: the file must be a mapping with site, name, origins, ..."])
    try:
        data = SITE_SCHEMA.load(document)
    except ValidationError as error:
        located = sorted((_line(document, p), _message(p, m)) for p, m in _flatten(error.messages))
        raise InventoryError([f"{path}:{line}: {message}" for line, message in located]) from error
    policy_url = data["policy_url"] or f"/s/{data['site']}/cookies"
    policy = _region_policy(data)
    public = _public(data, policy_url, policy)
    cookies = tuple(
        Cookie(
            c["name"],
            c["match"],
            c["category"],
            c["provider"],
            c["purpose"],
            parse_expiry(c["expiry"]),
        )
        for c in data["cookies"]
    )
    return Site(
        key=data["site"],
        name=data["name"],
        origins=tuple(origin.rstrip("/") for origin in data["origins"]),
        policy_url=policy_url,
        revision=data["revision"],
        consent_max_age_days=data["consent_max_age_days"],
        retention_days=data["retention_days"],
        languages=tuple(data["languages"]),
        cookie_domain=data["cookie_domain"],
        layout=data["layout"],
        source=str(path),
        public_url=data["public_url"].rstrip("/") if data["public_url"] else None,
        cookies=cookies,
        public=public,
        hash=canonical_hash(public),
        controller={"name": data["name"], **(data["controller"] or {})},
        jurisdiction=tuple(data["jurisdiction"]),
        policy=policy,
    )


def jurisdictions(site: Site) -> tuple[str, ...]:
    """Where the site's processing is governed (ISO 3166 codes, EU, EEA): its ``jurisdiction`` key, else EU."""
    return site.jurisdiction


def inventory_files(path: Path) -> list[Path]:
    """The inventory files at ``path``: the file itself, or a folder's ``*.yaml``/``*.yml``."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def load_inventory(path: Path) -> dict[str, Site]:
    """Load every site at ``path``; raise InventoryError listing every problem found."""
    if not path.exists():
        raise InventoryError([f"{path}: no such file or folder"])
    files = inventory_files(path)
    if not files:
        raise InventoryError([f"{path}: no .yaml inventory files in this folder"])
    sites: dict[str, Site] = {}
    errors: list[str] = []
    for file in files:
        try:
            site = load_site(file)
        except InventoryError as error:
            errors.extend(error.errors)
            continue
        if site.key in sites:
            errors.append(f"{file}:1: site {site.key!r} is already described by {sites[site.key].source}")
        sites[site.key] = site
    if errors:
        raise InventoryError(errors)
    return sites


def init_app(app: Flask) -> None:
    """Load the configured inventory once; a bad file stops the start."""
    app.extensions["consent.sites"] = load_inventory(inventory_path(app.config["INVENTORY"]))


def inventory_path(configured: str) -> Path:
    """The inventory to load: the configured path (from the current directory, else the service's root).

    Left at its default (``cookies.yaml``) where no such file is, it is the demo
    inventory the service ships with, so that an installed service starts anywhere.
    """
    path = Path(configured)
    if path.is_absolute() or path.exists():
        return path
    if (ROOT / path).exists():
        return ROOT / path
    return DEMO_INVENTORY if configured == "cookies.yaml" else path


def sites() -> dict[str, Site]:
    """Every configured site, by key."""
    return current_app.extensions["consent.sites"]


def get_site(key: str) -> Site:
    """The site ``key``, or a 404."""
    site = sites().get(key)
    if site is None:
        abort(404, description=f"unknown site {key!r}")
    return site
