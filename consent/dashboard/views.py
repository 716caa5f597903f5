"""The dashboard at ``/admin``: login, and for each site its consent rates, records and undeclared cookies.

Every page but the login form needs a dashboard user's session (or the admin
bearer token, for scripts). Every form is protected against CSRF by
Flask-WTF; the checks run for this blueprint only, so the JSON API, which
browsers call cross-site by design, is untouched.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import select
from werkzeug.exceptions import TooManyRequests

from consent.dashboard.chart import opt_in_chart
from consent.dashboard.users import authenticate, current_user, end_session, is_logged_in, start_session
from consent.embed.undeclared import is_declared, undeclared_cookies
from consent.inventory.sites import Site, get_site, sites
from consent.inventory.texts import CATEGORIES
from consent.log.history import records_of
from consent.log.recording import ACTIONS, UUID
from consent.log.stats import ACTION_LABELS, percent, site_stats
from consent.resources import STATIC
from consent.scan.stored import newest_scan
from consent.store.models import ConsentRecord, db
from consent.web.auth import is_admin, require_admin
from consent.web.errors import ApiError
from consent.web.limits import client_address, rate_limits

STATIC_FILES = {"admin.css"}
OPEN_ENDPOINTS = {"admin.login", "admin.static_file"}
RECENT_RECORDS = 20
UNDECLARED_SHOWN = 100
PERIODS = (7, 30, 90, 365)

bp = Blueprint("admin", __name__)
csrf = CSRFProtect()


@bp.before_request
def _require_login() -> ResponseReturnValue | None:
    """Let in a dashboard session or the admin token; send anyone else to the login page."""
    if request.endpoint not in OPEN_ENDPOINTS and not (is_logged_in() or is_admin()):
        if "Authorization" in request.headers:
            require_admin()  # a script with a wrong token gets 401/403, not a login form
        return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
    if request.method == "POST":
        csrf.protect()
    return None


def _safe_next(target: str | None) -> str:
    # Only back into the dashboard: never an open redirect to another host, and
    # nothing a Location header cannot carry (CR, LF and other controls).
    if target and target.startswith("/admin") and target.isprintable():
        return target
    return url_for("admin.index")


def _account() -> str:
    name = request.form.get("username", "")
    return "account:" + hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:24]


def _account_and_client() -> str:
    return f"{_account()}|{client_address()}"


# Failed logins are counted three ways (see docs/dashboard.md): per account and client,
# per client over every account, and per account from everywhere. One client can
# reach neither of the last two alone, so it cannot lock anyone else out.
LOGIN_RULES = (
    ("RATELIMIT_ADMIN_LOGIN", _account_and_client),
    ("RATELIMIT_ADMIN_LOGIN_PER_CLIENT", client_address),
    ("RATELIMIT_ADMIN_LOGIN_PER_ACCOUNT", _account),
)


@bp.route("/admin/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; a right username and password start a session."""
    if request.method == "GET":
        return render_template("admin/login.html", next=request.args.get("next", ""), error=None)
    limits = rate_limits()
    if limits is not None:
        limits.refuse_if_reached(LOGIN_RULES)
    user = authenticate(request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        if limits is not None:
            limits.count(LOGIN_RULES)
        page = render_template(
            "admin/login.html", next=request.form.get("next", ""), error="Wrong username or password."
        )
        return page, 401
    start_session(user)
    db.session.commit()
    return redirect(_safe_next(request.form.get("next")), 303)


@bp.post("/admin/logout")
def logout() -> ResponseReturnValue:
    """End the session on the server: a saved copy of the cookie no longer opens anything."""
    end_session()
    db.session.commit()
    return redirect(url_for("admin.login"), 303)


@bp.get("/static/admin/<name>")
def static_file(name: str) -> ResponseReturnValue:
    """The dashboard's stylesheet, served by the service itself."""
    if name not in STATIC_FILES:
        raise ApiError(404, "no such file")
    return send_from_directory(STATIC, name, max_age=300)


@bp.get("/admin")
def index() -> ResponseReturnValue:
    """Every site of this deployment, with its records of the last 30 days."""
    overview = []
    for site in sorted(sites().values(), key=lambda s: s.name.lower()):
        report = site_stats(site.key)
        overview.append({"site": site, "records": report.totals.records, "today": report.days[-1].counts.records})
    return render_template("admin/index.html", overview=overview, user=_who())


def _since(site: Site) -> date | None:
    given = request.args.get("since")
    if not given:
        return None
    try:
        return date.fromisoformat(given)
    except ValueError as error:
        raise ApiError(400, "since must be a date like 2026-01-31", {"since": [str(error)]}) from error


def _lookup(site: Site) -> dict[str, Any] | None:
    consent_id = request.args.get("consent_id", "").strip().lower()
    if not consent_id:
        return None
    if not UUID.match(consent_id):
        return {"consent_id": consent_id, "error": "That is not a consent ID (a UUID).", "records": []}
    rows = records_of(site.key, consent_id)
    return {"consent_id": consent_id, "error": None if rows else "No records for this consent ID.", "records": rows}


@bp.get("/admin/sites/<site>")
def site_dashboard(site: str) -> ResponseReturnValue:
    """One site: opt-in rates per day, totals by action, GPC share, rates by regime and country, recent records."""
    current = get_site(site)
    report = site_stats(current.key, _since(current))
    labels = {c["key"]: c["label"][current.default_language] for c in current.public["categories"]}
    optional = {key: labels[key] for key in CATEGORIES[1:]}
    recent = db.session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.site == current.key)
        .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        .limit(RECENT_RECORDS)
    ).all()
    periods = [(days, report.until - timedelta(days=days - 1)) for days in PERIODS]
    undeclared = undeclared_cookies(current, UNDECLARED_SHOWN)
    scan = newest_scan(current.key)
    # A name declared since the scan ran is no longer undeclared.
    scanned = {
        name: pages
        for name, pages in (scan.undeclared_pages() if scan else {}).items()
        if not is_declared(current, name)
    }
    reported = {seen.name for seen in undeclared}
    return render_template(
        "admin/site.html",
        site=current,
        report=report,
        chart=opt_in_chart(report, optional),
        labels=optional,
        actions=[(ACTION_LABELS[a], getattr(report.totals, a)) for a in ACTIONS],
        breakdowns=[
            ("regime", "By regime", "Regime", report.by_regime, "before regions"),
            ("country", "By country", "Country", report.by_country, "unknown"),
        ],
        recent=recent,
        lookup=_lookup(current),
        undeclared=undeclared,
        scan=scan,
        scanned=scanned,
        scanned_only=[(name, pages) for name, pages in sorted(scanned.items()) if name not in reported],
        periods=periods,
        user=_who(),
    )


def _who() -> str:
    user = current_user()
    return user.username if user is not None else "admin token"


@bp.errorhandler(CSRFError)
def _form_expired(error: CSRFError) -> ResponseReturnValue:
    return render_template(
        "admin/error.html", message="The form expired or was not sent from this page; try again."
    ), 400


@bp.errorhandler(TooManyRequests)
def _too_many_logins(error: TooManyRequests) -> ResponseReturnValue:
    wait = int(error.retry_after or 60)  # type: ignore[arg-type]
    message = f"Too many login attempts; try again in {wait} seconds."
    return render_template("admin/login.html", next="", error=message), 429, {"Retry-After": str(wait)}


def init_app(app: Flask) -> None:
    """CSRF protection for the dashboard's forms, the login limit, and the routes."""
    # Checked in _require_login for this blueprint only; the JSON API has no forms.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    app.jinja_env.filters["percent"] = percent
    app.register_blueprint(bp)
