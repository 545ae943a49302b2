"""Signing in through the province's identity provider (OpenID Connect), against a provider started in
the test on a loopback port and the account database on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.access.oidc import OidcClient, OidcConfig, OidcProblem
from gateway.access.principal import Role
from gateway.access.service import Identity, SignInRefused
from gateway.api.app import create_app
from tests.access.helpers import PASSWORD, add_user, location_error
from tests.access.oidc_provider import CLIENT_ID, CLIENT_SECRET, Misbehaviour, RunningProvider, LoopbackProvider
from tests.gateways import REGISTRATION, RESIDENCE, running_gateway


@pytest.fixture
def provider(clock):
    provider = LoopbackProvider(now=clock.now)
    with RunningProvider(provider):
        yield provider


def configure(gateway, provider: LoopbackProvider, **options) -> None:
    config = OidcConfig(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options)
    gateway.oidc = OidcClient(config, gateway.clock.now)


@pytest.fixture
async def gateway(access, provider):
    # The account database under test: SQLite and PostgreSQL.
    async with running_gateway(clock=access.clock, access=access, prepare=lambda gw: configure(gw, provider)) as gw:
        yield gw


def browser(gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway)), base_url="http://gw")


async def through_the_provider(http: httpx.AsyncClient, provider: LoopbackProvider, claims: dict, *, next: str = "/",
                               tamper_state: bool = False) -> httpx.Response:
    """What a browser does: off to the provider (real HTTP), back to the callback with the code."""
    provider.next_login = claims
    leaving = await http.get("/auth/oidc/login", params={"next": next})
    assert leaving.status_code == 303, leaving.text
    async with httpx.AsyncClient() as outside:
        at_provider = await outside.get(leaving.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = at_provider.headers["location"]
    if tamper_state:
        back = back.replace("state=", "state=x")
    return await http.get(back)


def clerk_claims(sub: str = "sub-clerk-1", username: str = "wang.clerk", scope: str = RESIDENCE, **more) -> dict:
    return {"sub": sub, "preferred_username": username, "gateway_role": "clerk", "gateway_scope": scope, **more}


async def sign_ins(access) -> list:
    return [r for r in [r async for r in access.audit.records()] if r.action == "sign_in"]


async def test_a_clerk_signs_in_through_the_provider_into_the_same_session_as_login(gateway, provider):
    async with browser(gateway) as http:
        done = await through_the_provider(http, provider, clerk_claims(), next=f"/nodes/{RESIDENCE}/inbox")
        me = await http.get("/auth/me")
        inbox = await http.get(f"/nodes/{RESIDENCE}/inbox")
        elsewhere = await http.get(f"/nodes/{REGISTRATION}/inbox")
    assert done.status_code == 200 and f'url=/nodes/{RESIDENCE}/inbox"' in done.text
    cookie = next(v for v in done.headers.get_list("set-cookie") if v.startswith("gw_session="))
    assert {"httponly", "samesite=strict", "path=/"} <= {p.strip().lower() for p in cookie.split(";")}
    assert me.json() == {"username": "wang.clerk", "role": "clerk", "scope": RESIDENCE}
    assert inbox.status_code == 200 and elsewhere.status_code == 403
    [record] = await sign_ins(gateway.access)
    assert (record.username, record.role, record.result) == ("wang.clerk", "clerk", "ok")
    assert record.detail == f"oidc {provider.issuer}"


async def test_the_account_made_on_first_sign_in_follows_the_claims_and_takes_no_password(gateway, provider):
    async with browser(gateway) as http:
        await through_the_provider(http, provider, clerk_claims())
    async with browser(gateway) as http:  # moved to supervise the county: the provider says so
        await through_the_provider(http, provider, clerk_claims(gateway_role="supervisor", gateway_scope="110101"))
        me = await http.get("/auth/me")
    assert me.json() == {"username": "wang.clerk", "role": "supervisor", "scope": "110101"}
    users = await gateway.access.store.list_users()
    assert [(u.username, u.role) for u in users] == [("wang.clerk", Role.SUPERVISOR)]
    for password in (PASSWORD, "!oidc", ""):
        with pytest.raises(SignInRefused) as refused:
            await gateway.access.sign_in("wang.clerk", password, source="test")
        assert refused.value.code == "bad_credentials"


@pytest.mark.parametrize("claims, code, reason", [
    (clerk_claims(gateway_role="superuser"), "oidc_role", "claim gateway_role is 'superuser': not one of clerk"),
    (clerk_claims(gateway_role=None), "oidc_role", "claim gateway_role is missing"),
    (clerk_claims(scope="1101"), "oidc_scope", "a clerk takes a 9-digit --scope"),
    (clerk_claims(scope="130102001"), "oidc_scope", "township 130102001 is not hosted by this gateway"),
    (clerk_claims(gateway_role="supervisor", scope=""), "oidc_scope", "a supervisor takes a 2-digit or a 4-digit"),
    (clerk_claims(username="王 秀英"), "oidc_username", "claim preferred_username is missing or not 1 to 64"),
    (clerk_claims(sub="s" * 300), "oidc_failed", "claim sub is not a string of 1 to 255 characters"),
])
async def test_an_invalid_role_or_scope_claim_is_refused_with_a_reason(gateway, provider, claims, code, reason):
    claims = {k: v for k, v in claims.items() if v is not None}
    async with browser(gateway) as http:
        done = await through_the_provider(http, provider, claims, next="/cases")
        me = await http.get("/auth/me")
    assert done.status_code == 303 and location_error(done) == code
    assert done.headers["location"].endswith("&next=/cases")
    assert "gw_session" not in http.cookies and me.status_code == 401
    [record] = await sign_ins(gateway.access)
    assert record.result == code and reason in record.detail
    assert record.username == ("" if code == "oidc_username" else "wang.clerk")  # who tried, when it can be told
    assert await gateway.access.store.list_users() == []


@pytest.mark.parametrize("misbehaviour", [
    Misbehaviour(foreign_key=True), Misbehaviour(audience="another-client"), Misbehaviour(expired=True),
    Misbehaviour(nonce="a-nonce-of-another-sign-in"),
], ids=["signature", "audience", "expired", "nonce"])
async def test_an_id_token_that_fails_verification_signs_nobody_in(gateway, provider, misbehaviour):
    provider.misbehave = misbehaviour
    async with browser(gateway) as http:
        done = await through_the_provider(http, provider, clerk_claims())
    assert done.status_code == 303 and location_error(done) == "oidc_failed"
    assert "gw_session" not in http.cookies
    [record] = await sign_ins(gateway.access)
    assert record.result == "oidc_failed" and record.detail.startswith("ID token refused")


async def test_an_id_token_of_another_issuer_is_refused_even_signed_with_the_right_key(gateway, provider, clock):
    impostor = LoopbackProvider(now=clock.now, key=provider.key, issuer="http://127.0.0.1:9/another-province")
    token = impostor.id_token(clerk_claims(), "the-nonce")
    with pytest.raises(OidcProblem) as refused:
        await gateway.oidc.verify_id_token(token, "the-nonce")
    assert refused.value.code == "oidc_failed" and "iss" in refused.value.reason
    genuine = provider.id_token(clerk_claims(), "the-nonce")
    assert (await gateway.oidc.verify_id_token(genuine, "the-nonce"))["sub"] == "sub-clerk-1"


async def test_a_callback_with_another_state_is_refused_before_the_code_is_redeemed(gateway, provider):
    async with browser(gateway) as http:
        done = await through_the_provider(http, provider, clerk_claims(), tamper_state=True)
    assert location_error(done) == "oidc_failed" and provider.token_requests == 0
    [record] = await sign_ins(gateway.access)
    assert record.detail == "state does not match this browser's sign-in"


async def test_a_callback_without_the_browsers_pending_sign_in_is_refused(gateway, provider):
    async with browser(gateway) as http:
        provider.next_login = clerk_claims()
        leaving = await http.get("/auth/oidc/login")
        http.cookies.clear()  # another browser, or the ten minutes are over
        async with httpx.AsyncClient() as outside:
            back = (await outside.get(leaving.headers["location"])).headers["location"]
        done = await http.get(back)
    assert location_error(done) == "oidc_failed" and provider.token_requests == 0


async def test_the_authorization_request_uses_pkce_s256_state_and_nonce(gateway, provider):
    async with browser(gateway) as http:
        leaving = await http.get("/auth/oidc/login", params={"next": "//evil.example/"})
    target = urlsplit(leaving.headers["location"])
    q = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider.issuer}/authorize"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 43 and len(q["nonce"]) >= 43 and "openid" in q["scope"].split()
    assert q["redirect_uri"] == "http://gw/auth/oidc/callback" and q["client_id"] == CLIENT_ID
    pending = next(v for v in leaving.headers.get_list("set-cookie") if v.startswith("gw_oidc="))
    flags = {p.strip().lower() for p in pending.split(";")}
    assert {"httponly", "samesite=lax", "path=/auth/oidc", "max-age=600"} <= flags
    assert "code_verifier" not in q


@pytest.mark.parametrize("trusted, amr, acr, code", [
    (False, ["pwd", "otp"], None, "oidc_second_factor"),  # the gateway does not take the provider's word
    (True, ["pwd"], None, "oidc_second_factor"),
    (True, None, None, "oidc_second_factor"),
    (True, ["pwd", "otp"], None, None),
    (True, ["pwd"], "urn:province:loa:2", None),
])
async def test_an_operator_needs_the_providers_second_factor(gateway, provider, trusted, amr, acr, code):
    configure(gateway, provider, idp_second_factor=trusted, second_factor_acr=frozenset({"urn:province:loa:2"}))
    claims = {"sub": "sub-op", "preferred_username": "li.operator", "gateway_role": "operator"}
    claims |= {"amr": amr} if amr is not None else {}
    claims |= {"acr": acr} if acr is not None else {}
    async with browser(gateway) as http:
        done = await through_the_provider(http, provider, claims)
        me = await http.get("/auth/me")
    if code is None:
        assert done.status_code == 200 and me.json()["role"] == "operator"
    else:
        assert location_error(done) == code and me.status_code == 401
        [record] = await sign_ins(gateway.access)
        assert record.result == code and "operator" in record.detail


async def test_a_locally_disabled_account_stays_refused(gateway, provider):
    async with browser(gateway) as http:
        await through_the_provider(http, provider, clerk_claims())
        assert (await http.get("/auth/me")).status_code == 200
        await gateway.access.set_disabled("wang.clerk", True, actor="cli")
        assert (await http.get("/auth/me")).status_code == 401  # signed out everywhere
        again = await through_the_provider(http, provider, clerk_claims())
    assert location_error(again) == "disabled"


async def test_the_provider_cannot_take_over_a_local_account_by_its_name(gateway, provider):
    await add_user(gateway, Role.CLERK, RESIDENCE, username="wang.clerk")
    async with browser(gateway) as http:
        done = await through_the_provider(http, provider, clerk_claims())
    assert location_error(done) == "oidc_username"
    [local] = await gateway.access.store.list_users()
    assert local.password_hash.startswith("$argon2id$")


async def test_two_first_sign_ins_of_one_person_at_once_make_one_account(gateway, provider):
    identity = Identity(provider.issuer, "sub-race", "race.clerk", Role.CLERK, RESIDENCE)
    signed = await asyncio.gather(*(gateway.access.sign_in_identity(identity, source="test") for _ in range(8)))
    assert len({s.token for s in signed}) == 8
    users = await gateway.access.store.list_users()
    assert [u.username for u in users] == ["race.clerk"]


async def test_the_provider_routes_answer_404_when_no_provider_is_configured(gateway):
    gateway.oidc = None
    async with browser(gateway) as http:
        assert (await http.get("/auth/oidc/login")).status_code == 404
        assert (await http.get("/auth/oidc/callback", params={"code": "c", "state": "s"})).status_code == 404
