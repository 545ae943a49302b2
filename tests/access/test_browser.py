"""Browsers and API clients over HTTP: the token endpoint, the sign-in form, its cookie and CSRF."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Request
from fastapi.responses import PlainTextResponse

from gateway.access.deps import csrf_token, require
from gateway.access.permissions import Permission
from gateway.access.principal import Role
from gateway.api.app import create_app
from tests.access.helpers import PASSWORD, add_user, browser_client, current_otp, location_error, login_csrf
from tests.gateways import RESIDENCE, sample_query, running_gateway


@pytest.fixture
async def gateway(access):
    # The account database under test: SQLite and PostgreSQL.
    async with running_gateway(clock=access.clock, access=access) as gw:
        yield gw


def client(gateway, base_url: str = "https://gw") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway)), base_url=base_url)


async def test_the_token_endpoint_takes_the_oauth2_password_form_and_returns_a_bearer_token(gateway):
    name, _ = await add_user(gateway, Role.CLERK, RESIDENCE)
    operator, secret = await add_user(gateway, Role.OPERATOR)
    async with client(gateway) as http:
        ok = await http.post("/auth/token", data={"username": name, "password": PASSWORD})
        wrong = await http.post("/auth/token", data={"username": name, "password": "Wrong-Pass-1"})
        no_otp = await http.post("/auth/token", data={"username": operator, "password": PASSWORD})
        with_otp = await http.post("/auth/token", data={"username": operator, "password": PASSWORD,
                                                        "otp": current_otp(gateway, secret)})
        body = ok.json()
        me = await http.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert ok.status_code == 200 and set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "bad_credentials")
    assert (no_otp.status_code, no_otp.json()["detail"]) == (401, "otp_required")
    assert with_otp.status_code == 200
    assert me.json() == {"username": name, "role": "clerk", "scope": RESIDENCE}


async def test_signing_in_at_login_sets_an_httponly_strict_secure_cookie_and_goes_to_next(gateway):
    name, _ = await add_user(gateway, Role.CLERK, RESIDENCE)
    async with client(gateway, "https://gw") as http:
        response = await http.post("/login", data={"username": name, "password": PASSWORD,
                                                   "csrf_token": login_csrf(http), "next": f"/nodes/{RESIDENCE}/inbox"})
        assert response.status_code == 303 and response.headers["location"] == f"/nodes/{RESIDENCE}/inbox"
        cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith("gw_session="))
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= {p.strip().lower() for p in cookie.split(";")}
        assert (await http.get(f"/nodes/{RESIDENCE}/inbox")).status_code == 200
    async with client(gateway, "http://gw") as http:  # plain HTTP (behind nothing): no Secure flag
        response = await http.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": login_csrf(http)})
        cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith("gw_session="))
        assert "secure" not in cookie.lower()


async def test_a_next_pointing_off_site_goes_home_instead(gateway):
    name, _ = await add_user(gateway, Role.CLERK, RESIDENCE)
    async with client(gateway) as http:
        response = await http.post("/login", data={"username": name, "password": PASSWORD,
                                                   "csrf_token": login_csrf(http), "next": "//evil.example/x"})
    assert response.headers["location"] == "/"


async def test_each_refused_sign_in_redirects_to_login_with_its_error_code(gateway, access):
    name, _ = await add_user(gateway, Role.CLERK, RESIDENCE)
    operator, secret = await add_user(gateway, Role.OPERATOR)
    disabled, _ = await add_user(gateway, Role.CLERK, RESIDENCE)
    await access.set_disabled(disabled, True, actor="cli")

    async with client(gateway) as http:
        async def attempt(**form) -> str | None:
            response = await http.post("/login", data={"csrf_token": login_csrf(http), **form})
            assert response.status_code == 303
            return location_error(response)

        assert await attempt(username=name, password="Wrong-Pass-1") == "bad_credentials"
        assert await attempt(username=operator, password=PASSWORD) == "otp_required"
        assert await attempt(username=operator, password=PASSWORD, otp="12345x") == "otp_wrong"
        assert await attempt(username=disabled, password=PASSWORD) == "disabled"
        for _ in range(2):
            assert await attempt(username=name, password="Wrong-Pass-1") == "bad_credentials"
        # The third failure from one address on one name: throttled, before the fifth could lock it.
        throttled = await http.post("/login", data={"csrf_token": login_csrf(http), "username": name, "password": PASSWORD})
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 800
        assert "分钟后再试" in throttled.text
        forged = await http.post("/login", data={"username": operator, "password": PASSWORD,
                                                 "otp": current_otp(gateway, secret), "csrf_token": "guessed"})
        assert location_error(forged) == "csrf"
        assert "gw_session" not in forged.headers.get("set-cookie", "")


async def test_the_login_page_s_csrf_token_comes_with_its_cookie(gateway):
    """What the GET /login page does: csrf_token(request) in the form, the cookie set on the response."""
    app = create_app(gateway)

    @app.get("/login-form-probe")
    async def probe(request: Request, _: object = require(Permission.PUBLIC)) -> PlainTextResponse:
        return PlainTextResponse(csrf_token(request))

    name, _ = await add_user(gateway, Role.CLERK, RESIDENCE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://gw") as http:
        page = await http.get("/login-form-probe")
        token = page.text
        assert http.cookies.get("gw_login_csrf") == token
        assert (await http.get("/login-form-probe")).text == token  # stable while the cookie lasts
        signed = await http.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
        assert location_error(signed) is None and http.cookies.get("gw_session")


async def test_a_cookie_session_needs_the_csrf_token_on_every_state_changing_request(gateway):
    async with browser_client(gateway, Role.CLERK, RESIDENCE) as (http, csrf):
        without = await http.post(f"/nodes/{RESIDENCE}/queries", json=sample_query())
        wrong = await http.post(f"/nodes/{RESIDENCE}/queries", json=sample_query(), headers={"X-CSRF-Token": "x" * 64})
        with_header = await http.post(f"/nodes/{RESIDENCE}/queries", json=sample_query(), headers={"X-CSRF-Token": csrf})
        read = await http.get(f"/nodes/{RESIDENCE}/sent")  # reading needs none
        logout_forged = await http.post("/logout", data={"csrf_token": "forged"})
        logout = await http.post("/logout", data={"csrf_token": csrf})
        after = await http.get(f"/nodes/{RESIDENCE}/sent")
    assert without.status_code == wrong.status_code == 403 and "CSRF" in without.json()["detail"]
    assert with_header.status_code == 202
    assert read.status_code == 200
    assert logout_forged.status_code == 403
    assert (logout.status_code, logout.headers["location"]) == (303, "/login")
    assert after.status_code == 401  # the session was revoked in the database, not just forgotten


async def test_bearer_calls_need_no_csrf_token(gateway, access):
    name, _ = await add_user(gateway, Role.CLERK, RESIDENCE)
    token = (await access.sign_in(name, PASSWORD, source="x")).token
    async with client(gateway) as http:
        response = await http.post(f"/nodes/{RESIDENCE}/queries", json=sample_query(),
                                   headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 202


async def test_an_anonymous_page_request_is_sent_to_login_with_where_it_was_going(gateway):
    async with client(gateway) as http:
        response = await http.get("/docs", params={"x": "1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdocs%3Fx%3D1"
