"""Dashboard users: password hashes, the logged-in session, and ``consent admin create|list|delete``."""

from __future__ import annotations

import hashlib
import hmac
import re
import sys
from datetime import timedelta
from functools import cache

import click
from flask import Flask, Request, Response, g, request, session
from flask.cli import AppGroup
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from consent.models import AdminUser, db, utcnow

USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD_LENGTH = 12
SESSION_KEY = "admin"


class UserError(ValueError):
    """A username or password that cannot be used."""


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked ``Secure`` whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # Visitors' API calls carry no dashboard cookie: skip building the signer for them.
        if app.secret_key and app.config["SESSION_COOKIE_NAME"] not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        # Nothing to set or delete: skip working out the cookie's attributes.
        if not session and not session.modified:
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


def create_user(username: str, password: str) -> AdminUser:
    """Add a dashboard user with a scrypt password hash; the caller commits."""
    if not USERNAME.match(username):
        raise UserError("a username is 1-64 of A-Z a-z 0-9 . _ @ -")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if find_user(username) is not None:
        raise UserError(f"user {username!r} already exists")
    user = AdminUser(
        username=username,
        password_hash=generate_password_hash(password, method="scrypt"),
        created_at=utcnow(),
    )
    db.session.add(user)
    return user


def find_user(username: str) -> AdminUser | None:
    """The user called ``username``, if any."""
    return db.session.scalars(select(AdminUser).where(AdminUser.username == username)).first()


@cache
def _unknown_user_hash() -> str:
    return generate_password_hash("no such user", method="scrypt")


def authenticate(username: str, password: str) -> AdminUser | None:
    """The user if the password is right; as slow for unknown names, so timing reveals nothing."""
    user = find_user(username) if USERNAME.match(username) else None
    if user is None:
        check_password_hash(_unknown_user_hash(), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def _fingerprint(user: AdminUser) -> str:
    # Sessions carry a digest of the password hash: a user deleted (or created
    # again under the same name) loses every session at once.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def start_session(user: AdminUser) -> None:
    """Log ``user`` in: a fresh signed session that expires after the configured lifetime."""
    session.clear()
    session[SESSION_KEY] = [user.id, _fingerprint(user)]
    session.permanent = True
    user.last_login_at = utcnow()


def end_session() -> None:
    """Log out: forget everything the session held."""
    session.clear()


def current_user() -> AdminUser | None:
    """The user of this request's session, if it is still valid."""
    if "admin_user" in g:
        return g.admin_user  # type: ignore[no-any-return]
    user = None
    stored = session.get(SESSION_KEY)
    if isinstance(stored, list) and len(stored) == 2 and isinstance(stored[0], int):
        found = db.session.get(AdminUser, stored[0])
        if found is not None and hmac.compare_digest(str(stored[1]), _fingerprint(found)):
            user = found
    g.admin_user = user
    return user


def is_logged_in() -> bool:
    """Whether the request carries the session of a dashboard user (for routes shared with the API)."""
    return current_user() is not None


admin_cli = AppGroup("admin", help="Dashboard users.")


@admin_cli.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def create_command(username: str, password_stdin: bool) -> None:
    """Create a dashboard user (the password is prompted for)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        create_user(username, password)
    except UserError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"created dashboard user {username!r}")


@admin_cli.command("list")
def list_command() -> None:
    """List the dashboard users."""
    for user in db.session.scalars(select(AdminUser).order_by(AdminUser.username)):
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_login_at else "never"
        click.echo(f"{user.username}\tlast login: {last}")


@admin_cli.command("delete")
@click.argument("username")
def delete_command(username: str) -> None:
    """Delete a dashboard user; their sessions end at once."""
    user = find_user(username)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    db.session.delete(user)
    db.session.commit()
    click.echo(f"deleted dashboard user {username!r}")


def init_app(app: Flask) -> None:
    """Signed session cookies for the dashboard, and the ``consent admin`` commands."""
    app.config.setdefault("ADMIN_SESSION_SECONDS", 12 * 3600)
    app.config["SESSION_COOKIE_NAME"] = "consent_admin"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=int(app.config["ADMIN_SESSION_SECONDS"]))
    app.session_interface = AdminSessionInterface()
    app.cli.add_command(admin_cli)
