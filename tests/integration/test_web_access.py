"""Signing in to the web pages, CSRF, throttling, and each page refusing the wrong role."""

from __future__ import annotations

import pytest
from web_helpers import PASSWORD, csrf, seed_caseload, sign_in, web_client

from fhir_gateway.web._users import MAX_FAILURES

PAGES = {
    "/web/inbox": {"partner"},
    "/web/worklist": {"case-manager"},
    "/web/caseloads": {"case-manager"},
    "/web/patients/p1": {"case-manager"},
}
ROLE_OF = {"ann": "partner", "cm": "case-manager", "eve": "ehr"}


@pytest.fixture
def web(database, database_url):  # type: ignore[no-untyped-def]
    seed_caseload(database)
    with web_client(database, database_url) as client:
        yield client


def test_pages_send_a_stranger_to_the_sign_in_page(web):
    for page in PAGES:
        response = web.get(page)
        assert response.status_code == 303 and response.headers["location"] == "/web/login"
    login = web.get("/web/login")
    assert (
        login.status_code == 200
        and 'lang="en"' in login.text
        and '<label for="password">' in login.text
    )


def test_the_api_still_wants_a_token_while_pages_use_the_cookie(web):
    sign_in(web, "cm")
    assert web.get("/web/worklist").status_code == 200
    assert web.get("/Patient/p1").status_code == 401  # a web session is no API credential


@pytest.mark.parametrize("username", sorted(ROLE_OF))
def test_each_page_refuses_a_user_without_the_right_role(database, database_url, username):
    seed_caseload(database)
    with web_client(database, database_url) as web:
        assert sign_in(web, username).status_code == 303
        for page, roles in PAGES.items():
            response = web.get(page)
            if ROLE_OF[username] in roles:
                assert response.status_code == 200, (username, page)
            else:
                assert response.status_code == 403, (username, page)
                assert "Not allowed" in response.text and "Traceback" not in response.text
                assert "Jane" not in response.text


def test_a_wrong_password_is_refused_with_a_readable_message(web):
    response = sign_in(web, "ann", "not the password at all")
    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    assert "fg_session" not in response.headers.get("set-cookie", "")
    assert sign_in(web, "nobody-here", PASSWORD).status_code == 401


def test_the_session_cookie_is_httponly_and_samesite_lax(web):
    cookie = sign_in(web, "ann").headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("fg_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/web" in session


def test_repeated_failures_lock_the_account_even_with_the_right_password(web):
    for _ in range(MAX_FAILURES):
        assert sign_in(web, "ann", "wrong password again").status_code == 401
    locked = sign_in(web, "ann", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert sign_in(web, "cm").status_code == 303  # other accounts are unaffected


def test_a_form_without_a_valid_csrf_token_changes_nothing(web):
    sign_in(web, "ann")
    page = web.get("/web/inbox").text
    for token in (None, "0" * 64):
        data = {"version": "1"} if token is None else {"version": "1", "csrf_token": token}
        response = web.post("/web/inbox/t1/accept", data=data)
        assert response.status_code == 403 and "did not come from this site" in response.text
    assert "New (2)" in web.get("/web/inbox").text
    assert csrf(page)


def test_the_sign_in_form_itself_needs_the_csrf_token(web):
    response = web.post("/web/login", data={"username": "ann", "password": PASSWORD})
    assert response.status_code == 403
    assert "fg_session" not in response.headers.get("set-cookie", "")


def test_signing_out_ends_the_session(web):
    sign_in(web, "ann")
    page = web.get("/web/inbox")
    assert web.post("/web/logout", data={"csrf_token": csrf(page.text)}).status_code == 303
    assert web.get("/web/inbox").status_code == 303


def test_a_removed_user_is_signed_out_at_the_next_page(web, database):
    from fhir_gateway.web import remove_user

    sign_in(web, "ann")
    assert web.get("/web/inbox").status_code == 200
    with database.session() as session:
        remove_user(session, "ann")
    assert web.get("/web/inbox").status_code == 303


def test_pages_carry_protective_headers(web):
    sign_in(web, "cm")
    headers = web.get("/web/worklist").headers
    assert headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
