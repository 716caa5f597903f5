"""Dashboard users: password hashes, the logged-in session, and the ``consent admin`` commands.

A session is Flask's signed cookie; it holds the user's id, a digest of their
password hash and their *session epoch*, a number stored with the user. Raising
the epoch (logout, a password change, ``consent admin end-sessions``) ends
every session that user started before, whoever holds a copy of the cookie.
The check costs no query of its own: the dashboard loads the user anyway.
"""

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
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from consent.store.models import AdminUser, db
from consent.timestamps import utcnow

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
    session[SESSION_KEY] = [user.id, _fingerprint(user), user.session_epoch or 0]
    session.permanent = True
    user.last_login_at = utcnow()


def end_sessions(username: str | None = None) -> int:
    """End every session of ``username`` (of every user when None) on the server; the caller commits.

    Returns how many users' sessions were ended.
    """
    statement = update(AdminUser).values(session_epoch=AdminUser.session_epoch + 1)
    if username is not None:
        statement = statement.where(AdminUser.username == username)
    result = db.session.execute(statement)
    g.pop("admin_user", None)
    return int(result.rowcount)  # type: ignore[attr-defined]


def end_session() -> None:
    """Log out: end this user's sessions on the server (every copy of the cookie), and forget this one."""
    user = current_user()
    if user is not None:
        end_sessions(user.username)
    session.clear()


def change_password(username: str, password: str) -> None:
    """Give ``username`` a new password, which ends their sessions; the caller commits."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    user = find_user(username)
    if user is None:
        raise UserError(f"no user {username!r}")
    user.password_hash = generate_password_hash(password, method="scrypt")
    db.session.flush()
    end_sessions(username)


def current_user() -> AdminUser | None:
    """The user of this request's session, if it is still valid."""
    if "admin_user" in g:
        return g.admin_user
    user = None
    stored = session.get(SESSION_KEY)
    if isinstance(stored, list) and len(stored) == 3 and all(isinstance(part, int) for part in stored[::2]):
        found = db.session.get(AdminUser, stored[0])
        if (
            found is not None
            and hmac.compare_digest(str(stored[1]), _fingerprint(found))
            and stored[2] == (found.session_epoch or 0)
        ):
            user = found
    g.admin_user = user
    return user


def is_logged_in() -> bool:
    """Whether the request carries the session of a dashboard user (for routes shared with the API)."""
    return current_user() is not None


admin_cli = AppGroup("admin", help="Dashboard users.")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@admin_cli.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def create_command(username: str, password_stdin: bool) -> None:
    """Create a dashboard user (the password is prompted for)."""
    password = _read_password(password_stdin)
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


@admin_cli.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def password_command(username: str, password_stdin: bool) -> None:
    """Change a dashboard user's password; their sessions end at once."""
    try:
        change_password(username, _read_password(password_stdin))
    except UserError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"changed the password of {username!r}; their sessions have ended")


@admin_cli.command("end-sessions")
@click.argument("username", required=False)
def end_sessions_command(username: str | None) -> None:
    """End every dashboard session (or only USERNAME's) at once."""
    if username is not None and find_user(username) is None:
        raise click.ClickException(f"no user {username!r}")
    ended = end_sessions(username)
    db.session.commit()
    click.echo(f"ended the sessions of {ended} user{'s' if ended != 1 else ''}")


def init_app(app: Flask) -> None:
    """Signed session cookies for the dashboard, and the ``consent admin`` commands."""
    app.config["SESSION_COOKIE_NAME"] = "consent_admin"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=int(app.config["ADMIN_SESSION_SECONDS"]))
    app.session_interface = AdminSessionInterface()
    app.cli.add_command(admin_cli)
