"""The embed script ``/s/<site>/banner.js`` with the site's configuration inside, and the ``/demo`` shop."""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
from collections import OrderedDict
from typing import Any, cast

import minify
from flask import Blueprint, Flask, Response, current_app, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError

from consent.embed.replay import REPLAYABLE, BannerReplay
from consent.embed.scripts import BuiltScript, script_response
from consent.inventory.sites import Site, get_site, sites, validate_public_url
from consent.resources import STATIC, TEMPLATES
from consent.store.database import remember_inventory
from consent.web.regions import locate, region_source, sent_gpc, source

SCRIPT_SOURCE = STATIC / "banner.js"
CONFIG_MARKER = "/*__CONSENT_CONFIG__*/ null"
# The marker as a global name while the source is minified: a minifier keeps global names as written.
CONFIG_PLACEHOLDER = "__CONSENT_CONFIG__"
# The script for a region found from the client address: the browser may keep it, no shared cache may.
PRIVATE_CACHE_CONTROL = "private, max-age=300"
# The strings the banner shows before the visitor opens the cookie details; those
# details (descriptions, cookie table) come from the public inventory when asked for.
BANNER_TEXT_KEYS = (
    "title", "intro", "policy", "accept_all", "reject_all", "customise", "save", "close", "preferences",
    "always_on", "gpc_notice", "consent_id", "consent_date", "blocked", "load_once", "always_allow", "withdraw",
)  # fmt: skip
# What each regime's first layer shows beyond today's strings (consent.inventory.texts.REGIME_TEXTS).
REGIME_TEXT_KEYS = {
    "opt-in": (),
    "opt-out": ("notice", "opt_out", "ok"),
    "notice": ("notice", "ok"),
    "none": (),
}
# One cached script per variant: site, inventory hash, service address, regime, region and
# Sec-GPC. The address may come from the Host header and the region from any country, so the
# cache is bounded, least recently used first out.
CACHE_LIMIT = 512

bp = Blueprint(
    "banner",
    __name__,
    static_folder=str(STATIC / "demo"),
    static_url_path="/static/demo",
    template_folder=str(TEMPLATES),
)


# Repeated requests for the script are answered as the view first answered them (consent.embed.replay).
@bp.record_once
def _replay(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    # The trusted region headers change the answer, so they are part of what the replay matches on
    # (consent.web.regions wires itself before the routes).
    app.wsgi_app = BannerReplay(app.wsgi_app, region_source(app).environ_keys)  # type: ignore[method-assign]


@bp.record_once
def _public_url_setting(state: BlueprintSetupState) -> None:
    """Check ``CONSENT_PUBLIC_URL`` once at start-up; a bad one stops the start."""
    app = cast(Flask, state.app)
    configured = app.config.get("PUBLIC_URL") or None
    if configured is not None:
        try:
            validate_public_url(str(configured))
        except ValidationError as error:
            raise ValueError(f"CONSENT_PUBLIC_URL: {error.messages[0]}") from None
        configured = str(configured).rstrip("/")
    app.config["PUBLIC_URL"] = configured
    if configured is None and not (app.testing or app.config.get("DEMO")):
        with app.app_context():
            unset = sorted(key for key, site in sites().items() if site.public_url is None)
        if unset:
            app.logger.warning(
                "CONSENT_PUBLIC_URL is not set: banner.js of %s names the address it was requested at "
                "and varies on Host",
                ", ".join(unset),
            )


def service_url(site: Site) -> tuple[str, bool]:
    """Where the site's banner sends choices, and whether that came from the request's ``Host``.

    The site's ``public_url``, else ``CONSENT_PUBLIC_URL``; only without either
    (the demo) the address the script was requested at.
    """
    configured = site.public_url or current_app.config["PUBLIC_URL"]
    if configured:
        return configured, False
    return request.host_url.rstrip("/"), True


def banner_config(site: Site, service_url: str, region: str | None = None, sec_gpc: bool = False) -> dict[str, Any]:
    """What the banner needs from the public inventory, where to send choices, and this visitor's regime."""
    public = site.public
    regime = site.policy.regime_for(region)
    text_keys = BANNER_TEXT_KEYS + REGIME_TEXT_KEYS[regime]
    policy_url = site.policy_url
    if policy_url == f"/s/{site.key}/cookies":
        # The default policy page is the service's own declaration page.
        policy_url = service_url + policy_url
    return {
        "site": site.key,
        "api": service_url,
        "revision": site.revision,
        "languages": list(site.languages),
        "layout": site.layout,
        "cookie_domain": site.cookie_domain,
        "max_age_days": site.consent_max_age_days,
        "policy_url": policy_url,
        "texts": {lang: {key: texts[key] for key in text_keys} for lang, texts in public["texts"].items()},
        "categories": [{"key": c["key"], "label": c["label"]} for c in public["categories"]],
        # What withdrawal needs to find a refused category's cookies; necessary ones are never deleted.
        "cookies": [
            {"name": c["name"], "match": c["match"], "category": c["category"]}
            for c in public["cookies"]
            if c["category"] != "necessary"
        ],
        "regime": regime,
        "region": region,
        "sec_gpc": sec_gpc,
        "reask_days": site.policy.reask_after_refusal_days,
        "purposes_revision": site.policy.purposes_revision,
        "consent_mode": site.policy.consent_mode(),
    }


@functools.lru_cache(maxsize=4)
def minified(source: str) -> str:
    """The banner source minified once per process, with the configuration placeholder in place of its marker.

    tdewolff/minify drops comments and spaces and shortens local names; global
    names, property names, strings and templates (the stylesheet) stay as written.
    """
    if source.count(CONFIG_MARKER) != 1:
        raise RuntimeError(f"the banner source must contain {CONFIG_MARKER!r} exactly once")
    script = minify.string("application/javascript", source.replace(CONFIG_MARKER, CONFIG_PLACEHOLDER))
    if script.count(CONFIG_PLACEHOLDER) != 1:
        raise RuntimeError(f"the minified banner must contain {CONFIG_PLACEHOLDER!r} exactly once")
    return script


def build_script(
    site: Site, service_url: str, source: str, region: str | None = None, sec_gpc: bool = False
) -> BuiltScript:
    """The banner source, minified, with the site's configuration in place of its marker."""
    config = json.dumps(banner_config(site, service_url, region, sec_gpc), ensure_ascii=False, separators=(",", ":"))
    plain = minified(source).replace(CONFIG_PLACEHOLDER, config, 1).encode()
    return BuiltScript.of(plain)


def _script_source() -> str:
    """The banner source, read once per process; it must carry the configuration marker."""
    cached: str | None = current_app.extensions.get("consent.banner_source")
    if cached is None:
        cached = SCRIPT_SOURCE.read_text(encoding="utf-8")
        if cached.count(CONFIG_MARKER) != 1:
            raise RuntimeError(f"{SCRIPT_SOURCE} must contain {CONFIG_MARKER!r} exactly once")
        current_app.extensions["consent.banner_source"] = cached
    return cached


ScriptKey = tuple[str, str, str, str | None, bool]


def _cached_script(site: Site, service_url: str, region: str | None, sec_gpc: bool) -> BuiltScript:
    cache: OrderedDict[ScriptKey, BuiltScript] = current_app.extensions.setdefault(
        "consent.banner_cache", OrderedDict()
    )
    key = (site.key, site.hash, service_url, region, sec_gpc)
    script = cache.get(key)
    if script is None:
        script = cache[key] = build_script(site, service_url, _script_source(), region, sec_gpc)
        while len(cache) > CACHE_LIMIT:
            cache.popitem(last=False)
    else:
        # Under a threaded server another request may have evicted it meanwhile: then it stays out.
        with contextlib.suppress(KeyError):
            cache.move_to_end(key)
    return script


@bp.get("/s/<site>/banner.js")
def banner_script(site: str) -> ResponseReturnValue:
    """The embed script with the site's configuration and this visitor's regime; ETag, 304 and gzip when accepted.

    The regime is resolved here, from the trusted region header or the GeoIP
    file, so that no request stands between the page and its banner. The answer
    varies on those headers and on ``Sec-GPC``; one resolved from the client
    address is private (no shared cache may keep it) and never replayed.
    """
    current = get_site(site)
    remember_inventory(current)
    located = locate(request) if current.policy.regional else None
    if current.hash in current_app.extensions.get("consent.stored_versions", ()) and not (
        located and located.from_address
    ):
        # Stored: the answer may be sent again without this view (consent.embed.replay).
        request.environ[REPLAYABLE] = True
    address, from_host = service_url(current)
    sec_gpc = sent_gpc(request)
    script = _cached_script(current, address, located.region if located else None, sec_gpc)
    response = script_response(script)
    response.vary.add("Sec-GPC")
    if located is not None:
        for header in source().headers:
            response.vary.add(header)
        if located.from_address:
            response.headers["Cache-Control"] = PRIVATE_CACHE_CONTROL
    if from_host:
        # Public caches must not hand a script naming one host to requests for another.
        response.vary.add("Host")
    return response


@bp.get("/demo")
def demo() -> ResponseReturnValue:
    """A demo shop that embeds the banner as a third-party site would, under a strict CSP."""
    nonce = secrets.token_urlsafe(16)
    html = render_template(
        "demo.html",
        nonce=nonce,
        banner_url=url_for("banner.banner_script", site="demo", _external=True),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; frame-src https://www.youtube-nocookie.com"
    )
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
