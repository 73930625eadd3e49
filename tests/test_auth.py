"""Sign-in, tokens, CSRF and throttling."""

import re

from crmcore.cli import main


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_anonymous_api_call_gets_401(anonymous_client):
    response = anonymous_client.get("/api/v1/contacts")
    assert response.status_code == 401
    assert "Bearer" in response.json["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_openapi_document_is_public(anonymous_client):
    assert anonymous_client.get("/api/openapi.json").status_code == 200


def test_bearer_token_authenticates_and_revocation_stops_it(app, make_user, api_client):
    from crmcore.services.users import list_tokens, revoke_token

    user = make_user()
    client = api_client(user)
    assert client.get("/api/v1/contacts").status_code == 200
    revoke_token(list_tokens(user.id)[0].id)
    assert client.get("/api/v1/contacts").status_code == 401


def test_wrong_token_is_refused(anonymous_client):
    response = anonymous_client.get("/api/v1/contacts", headers={"Authorization": "Bearer crm_nope"})
    assert response.status_code == 401
    assert "invalid or revoked" in response.json["message"]


def test_pages_redirect_to_sign_in(anonymous_client):
    response = anonymous_client.get("/account")
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]


def test_sign_in_needs_csrf_and_right_password(app, make_user, anonymous_client):
    make_user(email="lea@example.com", password="correct horse")
    page = anonymous_client.get("/login")
    token = _csrf(page.get_data(as_text=True))
    no_csrf = anonymous_client.post("/login", data={"email": "lea@example.com", "password": "correct horse"})
    assert no_csrf.status_code == 400
    wrong = anonymous_client.post(
        "/login", data={"email": "lea@example.com", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 401
    ok = anonymous_client.post(
        "/login", data={"email": "lea@example.com", "password": "correct horse", "csrf_token": token}
    )
    assert ok.status_code == 302
    assert anonymous_client.get("/account").status_code == 200
    # The session also authenticates the API; unsafe methods then need the CSRF header.
    assert anonymous_client.get("/api/v1/contacts").status_code == 200
    token = _csrf(anonymous_client.get("/account").get_data(as_text=True))  # sign-in starts a new session
    refused = anonymous_client.post("/api/v1/tags", json={"name": "x"})
    assert refused.status_code == 400 and "CSRF" in refused.json["message"]
    accepted = anonymous_client.post("/api/v1/tags", json={"name": "x"}, headers={"X-CSRFToken": token})
    assert accepted.status_code == 201


def test_repeated_failures_lock_the_account(app, make_user, anonymous_client):
    make_user(email="bob@example.com", password="right password")
    token = _csrf(anonymous_client.get("/login").get_data(as_text=True))
    for _ in range(5):
        anonymous_client.post(
            "/login", data={"email": "bob@example.com", "password": "bad", "csrf_token": token}
        )
    locked = anonymous_client.post(
        "/login", data={"email": "bob@example.com", "password": "right password", "csrf_token": token}
    )
    assert locked.status_code == 401
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)


def test_password_change_signs_out_other_sessions(app, make_user, anonymous_client):
    from crmcore.services.users import set_password

    user = make_user(email="eve@example.com", password="first password")
    token = _csrf(anonymous_client.get("/login").get_data(as_text=True))
    anonymous_client.post(
        "/login", data={"email": "eve@example.com", "password": "first password", "csrf_token": token}
    )
    assert anonymous_client.get("/account").status_code == 200
    set_password(user.id, "second password")
    assert anonymous_client.get("/account").status_code == 302


def test_cli_users_and_tokens(app):
    runner = app.test_cli_runner()
    created = runner.invoke(
        main,
        ["users", "create", "--email", "cli@example.com", "--admin", "--password-stdin"],
        input="s3cret-pass\n",
    )
    assert created.exit_code == 0, created.output
    result = runner.invoke(main, ["tokens", "create", "--email", "cli@example.com"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    client = app.test_client()
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listing = runner.invoke(main, ["tokens", "list", "--email", "cli@example.com"])
    assert token not in listing.output and token[:10] in listing.output
    token_id = listing.output.split()[0]
    assert runner.invoke(main, ["tokens", "revoke", token_id]).exit_code == 0
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    short = runner.invoke(
        main, ["users", "create", "--email", "x@example.com", "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0 and "password" in short.output


def test_cli_password_reset(app, make_user):
    make_user(email="reset@example.com", password="old password")
    runner = app.test_cli_runner()
    result = runner.invoke(
        main, ["users", "password", "--email", "reset@example.com"], input="brand new pass\n"
    )
    assert result.exit_code == 0, result.output
    from crmcore.services.users import authenticate

    assert authenticate("reset@example.com", "brand new pass") is not None
    assert (
        runner.invoke(main, ["users", "password", "--email", "nobody@example.com"], input="x" * 9).exit_code
        != 0
    )
