"""Every route of the app, walked: anonymous callers are turned away, each role reaches exactly what
the role table gives it, a clerk never reaches another township, and a route without a declared
permission stops the app from starting."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import APIRouter
from starlette.routing import Mount

from gateway.access.deps import RouteWithoutPermission, check_routes, flat_routes, route_is_page, route_permissions
from gateway.access.permissions import Permission, allows
from gateway.access.principal import Role
from gateway.api import limits
from gateway.api.app import create_app
from tests.access.helpers import bearer_token, ensure_access
from tests.gateways import REGISTRATION, RESIDENCE, sample_query, running_gateway

SCOPES = {Role.CLERK: RESIDENCE, Role.SUPERVISOR: RESIDENCE[:4], Role.OPERATOR: "", Role.AUDITOR: "", Role.ADMIN: ""}
# the issue: only /health and the sign-in routes (password, and through the identity provider)
PUBLIC_PATHS = {"/health", "/auth/token", "/login", "/auth/oidc/login", "/auth/oidc/callback"}


@pytest.fixture
async def gateway():
    async with running_gateway() as gw:
        await ensure_access(gw)
        yield gw


def endpoints(app) -> list[tuple[str, str, object]]:
    out = []
    for route in flat_routes(app.routes):
        if isinstance(route, Mount):  # static files, declared with public_mount (check_routes checks them)
            continue
        for method in sorted(route.methods - {"HEAD"}):
            out.append((method, route.path, route))
    # Signing out revokes the caller's token: walk it last.
    return sorted(out, key=lambda e: e[1] == "/logout")


def concrete(path: str, code: str, prefix: str) -> str:
    path = path.replace("{code}", code).replace("{prefix}", prefix)
    return re.sub(r"\{[a-z_]+\}", "1", path)


def body_for(route) -> dict:
    """A body of the media type the route takes (limits refuse any other with 415 before the permission
    check): a form for the pages' forms, a file part for a page's upload, JSON for the API."""
    content = ((getattr(route, "openapi_extra", None) or {}).get("requestBody") or {}).get("content") or {}
    if "application/x-www-form-urlencoded" in content:
        return {"data": {"probe": "1"}}
    if "multipart/form-data" in content:
        return {"files": {"file": ("probe.csv", b"", "text/csv")}}
    if content and "application/json" not in content:  # a file upload of the API (CSV, xlsx)
        return {"content": b"probe", "headers": {"content-type": next(iter(content))}}
    return {"json": {}}


def permission_of(route) -> Permission:
    [permission] = set(route_permissions(route))
    return permission


def test_only_health_and_sign_in_are_public(gateway):
    public = {path for _, path, route in endpoints(create_app(gateway)) if permission_of(route) is Permission.PUBLIC}
    assert public == PUBLIC_PATHS


async def test_anonymous_callers_get_401_and_pages_a_redirect_to_login(gateway):
    app = create_app(gateway)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        for method, path, route in endpoints(app):
            if permission_of(route) is Permission.PUBLIC:
                continue
            url = concrete(path, RESIDENCE, RESIDENCE[:4])
            response = await http.request(method, url)
            if route_is_page(route):
                assert response.status_code == 303, (method, path)
                assert response.headers["location"].startswith("/login?next="), (method, path)
            else:
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.headers["www-authenticate"] == "Bearer"


def body_for(route) -> dict:
    """A body in the media type the route declares, so the request reaches the permission check
    (a body in another type is refused before it, 415)."""
    extra = getattr(route, "openapi_extra", None) or {}
    types = list((extra.get("requestBody") or {}).get("content") or {})
    if limits.FORM in types:
        return {"data": {"csrf_token": "-"}}
    if limits.MULTIPART in types:
        return {"files": {"file": ("cards.csv", b"")}}
    if types:
        return {"content": b"", "headers": {"content-type": types[0]}}
    return {"json": {}}


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_reaches_exactly_the_routes_its_table_gives_it(gateway, role):
    app = create_app(gateway)
    token = await bearer_token(gateway, role, SCOPES[role])
    code = RESIDENCE
    prefix = SCOPES[role] if role is Role.SUPERVISOR else RESIDENCE[:4]
    reached, refused = set(), set()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        for method, path, route in endpoints(app):
            response = await http.request(method, concrete(path, code, prefix), **body_for(route))
            expected = allows(role, permission_of(route))
            if expected:
                assert response.status_code not in (401, 403), (role, method, path, response.status_code, response.text)
                reached.add(path)
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)
                refused.add(path)
    assert reached and refused  # every role is given something and refused something


async def test_a_clerk_gets_403_on_every_route_of_another_township_even_for_a_message_that_exists(gateway):
    app = create_app(gateway)
    theirs = await gateway.service.submit(REGISTRATION, sample_query(residence=REGISTRATION, registration=RESIDENCE))
    token = await bearer_token(gateway, Role.CLERK, RESIDENCE)
    township_routes = [(m, p, r) for m, p, r in endpoints(app) if "{code}" in p]
    assert len(township_routes) >= 10
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        for method, path, route in township_routes:
            response = await http.request(method, concrete(path, REGISTRATION, REGISTRATION[:4]), **body_for(route))
            assert response.status_code == 403, (method, path, response.status_code)
        exists = await http.get(f"/nodes/{REGISTRATION}/messages/{theirs.message_id}")
        missing = await http.get(f"/nodes/{REGISTRATION}/messages/no-such-id")
    assert exists.status_code == missing.status_code == 403
    assert exists.json() == missing.json()  # the answer does not tell an existing id from a missing one


async def test_a_supervisor_sees_only_the_region_under_its_prefix(gateway):
    app = create_app(gateway)
    token = await bearer_token(gateway, Role.SUPERVISOR, RESIDENCE[:4])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        inside = await http.get(f"/regions/{RESIDENCE[:6]}/cases")
        outside = await http.get(f"/regions/{REGISTRATION[:4]}/cases")
        wider = await http.get(f"/regions/{RESIDENCE[:2]}/cases")
        records = await http.get(f"/nodes/{RESIDENCE}/inbox")
    assert inside.status_code == 200
    assert outside.status_code == wider.status_code == records.status_code == 403


async def test_an_app_with_a_route_that_declares_no_permission_does_not_start(gateway):
    router = APIRouter()

    @router.get("/forgotten")
    async def forgotten() -> dict:
        return {}

    app = create_app(gateway)
    app.include_router(router)  # included after create_app: caught at start-up
    with pytest.raises(RouteWithoutPermission, match="/forgotten"):
        check_routes(app.routes)
    with pytest.raises(RouteWithoutPermission, match="/forgotten"):
        async with app.router.lifespan_context(app):  # what uvicorn runs before it serves
            pass
    check_routes(create_app(gateway).routes)  # the app as shipped starts


def test_withdrawing_a_sent_query_is_its_own_permission_and_only_a_clerk_has_it(gateway):
    [route] = [r for m, path, r in endpoints(create_app(gateway))
               if (m, path) == ("POST", "/nodes/{code}/sent/{message_id}/withdraw")]
    assert permission_of(route) is Permission.NODE_WITHDRAW
    assert [role for role in Role if allows(role, Permission.NODE_WITHDRAW)] == [Role.CLERK]
