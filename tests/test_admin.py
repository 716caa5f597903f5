"""The dashboard: users, login and logout, CSRF, refusal without a session, and what a site's page shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from consent.dashboard.users import create_user, is_logged_in
from consent.store.models import AdminUser, db
from tests.support.admin_seed import PASSWORD, csrf_token, record, seed


@pytest.fixture
def dpo(app):
    with app.app_context():
        create_user("dpo", PASSWORD)
        db.session.commit()
    return "dpo"


def login(client, username="dpo", password=PASSWORD, next_=""):
    data = {"csrf_token": csrf_token(client), "username": username, "password": password, "next": next_}
    return client.post("/admin/login", data=data)


def test_admin_create_stores_only_a_scrypt_hash(app, runner):
    result = runner.invoke(args=["admin", "create", "dpo", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalars(select(AdminUser)).one()
    assert user.username == "dpo"
    assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash
    listed = runner.invoke(args=["admin", "list"])
    assert "dpo" in listed.output and "never" in listed.output


def test_admin_create_prompts_twice_for_the_password(app, runner, client):
    result = runner.invoke(args=["admin", "create", "dpo"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert login(client).status_code == 303


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("dpo", "short", "at least 12 characters"),
        ("no spaces", PASSWORD, "a username is"),
        ("", PASSWORD, "a username is"),
        ("dpo", PASSWORD, "already exists"),
    ],
)
def test_admin_create_refuses_bad_users(runner, dpo, username, password, message):
    result = runner.invoke(args=["admin", "create", username, "--password-stdin"], input=password + "\n")
    assert result.exit_code == 1
    assert message in result.output


def test_deleting_a_user_ends_their_sessions(client, runner, dpo):
    assert login(client).status_code == 303
    assert client.get("/admin").status_code == 200
    assert runner.invoke(args=["admin", "delete", "dpo"]).exit_code == 0
    assert client.get("/admin").status_code == 302
    assert runner.invoke(args=["admin", "delete", "dpo"]).exit_code == 1


def test_login_sets_a_signed_http_only_lax_session_cookie(client, dpo):
    response = login(client, next_="/admin/sites/demo?since=2026-01-01")
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/sites/demo?since=2026-01-01"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("consent_admin=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/admin").status_code == 200


def test_session_cookie_is_secure_over_https(app, dpo):
    client = app.test_client()
    token = csrf_token(client, "https://localhost/admin/login")
    data = {"csrf_token": token, "username": "dpo", "password": PASSWORD}
    # Over HTTPS Flask-WTF also checks that the Referer is this site.
    response = client.post(
        "https://localhost/admin/login", data=data, headers={"Referer": "https://localhost/admin/login"}
    )
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize(("username", "password"), [("dpo", "wrong password!"), ("nobody", PASSWORD), ("", "")])
def test_wrong_credentials_are_refused(client, dpo, username, password):
    response = login(client, username, password)
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_login_without_csrf_token_is_refused(client, dpo):
    response = client.post("/admin/login", data={"username": "dpo", "password": PASSWORD})
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_logout_needs_the_csrf_token_and_ends_the_session(client, dpo):
    login(client)
    assert client.post("/admin/logout").status_code == 400
    assert client.get("/admin").status_code == 200
    response = client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin")})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/login"
    assert client.get("/admin").status_code == 302


@pytest.mark.parametrize("path", ["/admin", "/admin/sites/demo", "/admin/sites/demo?consent_id=x"])
def test_pages_redirect_to_login_without_a_session(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=/admin")


def test_login_returns_only_into_the_dashboard(client, dpo):
    for target in ("//evil.example/admin", "https://evil.example/", "/api/v1/sites/demo/inventory"):
        response = login(client, next_=target)
        assert response.headers["Location"] == "/admin", target


def test_admin_token_opens_the_dashboard_and_a_wrong_one_is_refused(client, admin_headers):
    assert client.get("/admin/sites/demo", headers=admin_headers).status_code == 200
    assert client.get("/admin", headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_login_attempts_are_rate_limited(make_app, dpo):
    client = make_app(RATELIMIT_ADMIN_LOGIN="3 per minute").test_client()
    statuses = [login(client, password="wrong password!").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert "Too many login attempts" in login(client).get_data(as_text=True)


def test_is_logged_in_tells_shared_routes_about_the_session(app, client, dpo):
    with client:
        client.get("/admin/login")
        assert not is_logged_in()
    login(client)
    with client:
        client.get("/admin/login")
        assert is_logged_in()


def test_pages_need_no_inline_script_or_style(client, dpo):
    login(client)
    for path in ("/admin/login", "/admin", "/admin/sites/demo"):
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert "<script" not in page and "style=" not in page and "<style" not in page, path
    with client.get("/static/admin/admin.css") as stylesheet:
        assert stylesheet.mimetype == "text/css" and ".chart" in stylesheet.get_data(as_text=True)
    assert client.get("/static/admin/nothing.css").status_code == 404


def test_site_page_shows_totals_records_and_exports(app, client, dpo):
    now = datetime.now(UTC)
    known = "0f8b2c1e-7d4a-4e55-9a7b-3c2d1e0f9a8b"
    seed(
        app,
        [
            record("demo", now - timedelta(minutes=3), consent_id=known),
            record("demo", now - timedelta(minutes=2), "reject_all", gpc=True, consent_id=known),
            record("demo", now - timedelta(minutes=1), "custom", analytics=True),
        ],
    )
    login(client)
    page = client.get("/admin/sites/demo").get_data(as_text=True)
    assert re.search(r'id="total-records">3<', page)
    assert re.search(r"<dt>Accept all</dt><dd>1</dd>", page)
    assert re.search(r"<dt>Reject all</dt><dd>1</dd>", page)
    assert re.search(r"<dt>Custom</dt><dd>1</dd>", page)
    assert re.search(r"<dt>Withdraw</dt><dd>0</dd>", page)
    assert re.search(r'id="gpc-share">33.3 %<', page)
    assert re.search(r"<dt>Analytics opt-in</dt><dd>66.7 %</dd>", page)
    assert page.count(f">{known}</a>") == 2
    assert 'href="/api/v1/sites/demo/export?format=csv"' in page
    assert 'href="/api/v1/sites/demo/export?format=jsonl"' in page

    found = client.get(f"/admin/sites/demo?consent_id={known.upper()}").get_data(as_text=True)
    history = found[found.index('class="history"') : found.index("Most recent")]
    assert history.count("<tr>") == 3  # a header and two records, oldest first
    assert history.index("accept_all") < history.index("reject_all")
    missing = client.get("/admin/sites/demo?consent_id=5d5e0c1f-0000-4000-8000-000000000000")
    assert "No records for this consent ID" in missing.get_data(as_text=True)
    assert "not a consent ID" in client.get("/admin/sites/demo?consent_id=<b>").get_data(as_text=True)


def test_site_page_refuses_a_bad_since_and_an_unknown_site(client, dpo):
    login(client)
    response = client.get("/admin/sites/demo?since=yesterday")
    assert response.status_code == 400 and response.json["error"]["fields"]["since"]
    assert client.get("/admin/sites/nope").status_code == 404


def saved_cookie(client):
    cookie = client.get_cookie("consent_admin")
    assert cookie is not None, "no session cookie"
    return cookie.value


def replay(app, cookie, path):
    """``path`` requested by someone holding a saved copy of the session cookie."""
    other = app.test_client()
    other.set_cookie("consent_admin", cookie)
    return other.get(path)


EXPORT = "/api/v1/sites/demo/export?format=jsonl"


def test_logout_ends_the_session_on_the_server(app, client, dpo):
    login(client)
    cookie = saved_cookie(client)
    assert replay(app, cookie, "/admin").status_code == 200
    assert replay(app, cookie, EXPORT).status_code == 200
    client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin")})
    assert replay(app, cookie, "/admin").status_code == 302
    assert replay(app, cookie, EXPORT).status_code == 401
    # Logging in again starts a session that works.
    assert login(client).status_code == 303 and client.get("/admin").status_code == 200


def test_changing_a_password_ends_that_users_sessions_only(app, client, runner, dpo):
    with app.app_context():
        create_user("auditor", PASSWORD)
        db.session.commit()
    login(client)
    cookie = saved_cookie(client)
    auditor = app.test_client()
    login(auditor, "auditor")
    result = runner.invoke(args=["admin", "password", "dpo", "--password-stdin"], input="another long password\n")
    assert result.exit_code == 0, result.output
    assert replay(app, cookie, "/admin").status_code == 302
    assert auditor.get("/admin").status_code == 200
    assert login(client).status_code == 401
    assert login(client, password="another long password").status_code == 303
    refused = runner.invoke(args=["admin", "password", "dpo", "--password-stdin"], input="short\n")
    assert refused.exit_code == 1 and "at least 12 characters" in refused.output
    assert runner.invoke(args=["admin", "password", "nobody", "--password-stdin"], input=PASSWORD + "\n").exit_code == 1


def test_admin_end_sessions_ends_every_session(app, client, runner, dpo):
    with app.app_context():
        create_user("auditor", PASSWORD)
        db.session.commit()
    login(client)
    auditor = app.test_client()
    login(auditor, "auditor")
    result = runner.invoke(args=["admin", "end-sessions", "auditor"])
    assert result.exit_code == 0 and "1 user" in result.output
    assert auditor.get("/admin").status_code == 302 and client.get("/admin").status_code == 200
    login(auditor, "auditor")
    result = runner.invoke(args=["admin", "end-sessions"])
    assert result.exit_code == 0 and "2 users" in result.output
    assert auditor.get("/admin").status_code == 302 and client.get("/admin").status_code == 302
    assert runner.invoke(args=["admin", "end-sessions", "nobody"]).exit_code == 1


def test_a_session_of_the_old_shape_is_refused(app, dpo):
    client = app.test_client()
    with app.app_context():
        user = db.session.scalars(select(AdminUser)).one()
        old = [user.id, __import__("consent.dashboard.users", fromlist=["_fingerprint"])._fingerprint(user)]
    with client.session_transaction() as stored:
        stored["admin"] = old
    assert client.get("/admin").status_code == 302


def test_the_login_throttle_says_when_to_retry(make_app, dpo):
    client = make_app(RATELIMIT_ADMIN_LOGIN="2 per minute").test_client()
    assert [login(client, password="wrong password!").status_code for _ in range(2)] == [401, 401]
    refused = login(client)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert f"try again in {refused.headers['Retry-After']} seconds" in refused.get_data(as_text=True)


def test_one_client_cannot_lock_out_another_client_or_account(make_app, dpo):
    app = make_app(RATELIMIT_ADMIN_LOGIN="3 per minute")
    with app.app_context():
        create_user("auditor", PASSWORD)
        db.session.commit()
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert [login(attacker, password="wrong password!").status_code for _ in range(4)] == [401, 401, 401, 429]
    # The same office network (/24), another address: not locked out.
    colleague = app.test_client()
    colleague.environ_base["REMOTE_ADDR"] = "198.51.100.8"
    assert login(colleague).status_code == 303
    # The attacker's address may still log in to another account.
    assert login(attacker, "auditor").status_code == 303


def test_failures_from_one_client_over_many_accounts_are_limited(make_app, dpo):
    client = make_app(RATELIMIT_ADMIN_LOGIN_PER_CLIENT="3 per minute").test_client()
    statuses = [login(client, f"user{n}", "wrong password!").status_code for n in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_an_account_has_a_ceiling_over_all_clients(make_app, dpo):
    app = make_app(RATELIMIT_ADMIN_LOGIN_PER_ACCOUNT="3 per minute")
    statuses = []
    for n in range(4):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"203.0.113.{n + 1}"
        statuses.append(login(client, password="wrong password!").status_code)
    assert statuses == [401, 401, 401, 429]


def test_successful_logins_are_not_counted(make_app, dpo):
    client = make_app(RATELIMIT_ADMIN_LOGIN="2 per minute").test_client()
    assert [login(client).status_code for _ in range(4)] == [303] * 4
