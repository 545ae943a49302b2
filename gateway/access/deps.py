"""``require``: the one FastAPI dependency through which every route says who may call it.

Usage::

    @router.get("/nodes/{code}/inbox")
    async def inbox(code: str, principal: Annotated[Principal, require(Permission.NODE_READ)]) -> ...

    @router.get("/inbox", response_class=HTMLResponse)
    async def inbox_page(principal: Annotated[Principal, require(Permission.NODE_READ, page=True)]) -> ...

What it does, in order:

- finds the caller: ``Authorization: Bearer <token>`` (API clients; sign in at ``POST /auth/token``
  or use a ``gateway tokens issue`` token), else the ``gw_session`` cookie (browsers; ``POST /login``);
- nobody signed in: 401 with ``WWW-Authenticate: Bearer``, except on a route marked as a page
  (``page=True``), which answers 303 to ``/login?next=<path and query>``. Pages are marked
  explicitly rather than guessed from ``Accept: text/html``: the answer depends on the route, not on
  what a client happens to send;
- the role lacks the permission: 403 (every 403 here is written to the audit trail first: action
  ``denied``, the user, the route's template, the township, and why — ``role``, ``scope``, ``csrf``);
- the route has a ``{code}`` path parameter (a township): 403 unless ``principal.covers_township``;
  a ``{prefix}`` parameter (a region): 403 unless ``principal.covers_region``. A clerk of another
  township learns nothing, not even whether a message id exists there;
- a state-changing request (POST, PUT, PATCH, DELETE) authenticated by the cookie must carry the CSRF
  token (form field ``csrf_token`` or header ``X-CSRF-Token``; see ``csrf_token``), else 403.
  Bearer-token calls need none: a browser never adds that header by itself.

``Permission.PUBLIC`` declares a route open (``/health``, the sign-in routes); it still resolves the
caller when there is one and returns ``None`` otherwise. ``check_routes`` (called by ``create_app`` and
again at start-up, so routers included later are covered) refuses an app with a route that declares
no permission: deny by default.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from starlette.routing import BaseRoute, Mount

from gateway.access import csrf
from gateway.access.audit import Action, AuditEntry
from gateway.access.csrf import csrf_token
from gateway.access.permissions import Permission, allows
from gateway.access.principal import Principal

__all__ = ["require", "csrf_token", "check_routes", "public_mount", "current_principal", "RouteWithoutPermission",
           "source_address", "flat_routes", "route_permissions", "route_is_page", "denied", "route_of"]

log = logging.getLogger(__name__)

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RouteWithoutPermission(RuntimeError):
    """An app has a route that declares no permission; it must not start."""


def source_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def current_principal(request: Request) -> Principal | None:
    """The signed-in caller, or None; remembered on the request (``request.state.principal``)."""
    state = request.scope.setdefault("state", {})
    if "principal" in state:
        return state["principal"]
    access = getattr(request.app.state.gateway, "access", None)
    principal: Principal | None = None
    token = _bearer(request)
    via_cookie = False
    if token is None:
        token = request.cookies.get(csrf.SESSION_COOKIE)
        via_cookie = token is not None
    if token and access is not None:
        principal = await access.authenticate(token)
    state["principal"] = principal
    state["via_cookie"] = via_cookie and principal is not None
    state["token"] = token if principal is not None else None
    return principal


def route_of(request: Request) -> str:
    """The route's method and path template (``GET /nodes/{code}/inbox``): what was asked, without the
    caller's own text; the path as sent only when no route matched."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    return f"{request.method} {path}"[:64]


async def denied(request: Request, principal: Principal, message: str, why: str, *, township: Any = None,
                 detail: str = "") -> HTTPException:
    """The 403 to raise, after writing the denial to the audit trail: user, route, township, and why
    (``role``, ``scope`` or ``csrf``). A failure to write it is logged; the caller is refused anyway."""
    access = getattr(request.app.state.gateway, "access", None)
    code = str(township) if township is not None else ""
    if access is not None:
        entry = AuditEntry(Action.DENIED, principal.username, principal.role.value, source_address(request),
                           object_id=route_of(request), township=code if len(code) <= 9 else "", result=why,
                           detail=detail)
        try:
            await access.audit.record(entry)
        except Exception:
            log.exception("the denial of %s to %s could not be audited", principal.username, entry.object_id)
    return HTTPException(403, message)


def _refuse_anonymous(request: Request, page: bool) -> HTTPException:
    if page:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return HTTPException(303, "sign in first", headers={"Location": f"/login?next={quote(target, safe='')}"})
    return HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})


def require(permission: Permission, *, page: bool = False) -> Any:
    """A dependency returning the signed-in ``Principal`` allowed ``permission`` (see the module doc)."""

    async def dependency(request: Request) -> Principal | None:
        principal = await current_principal(request)
        if permission is Permission.PUBLIC:
            return principal
        if principal is None:
            raise _refuse_anonymous(request, page)
        code = request.path_params.get("code")
        if not allows(principal.role, permission):
            raise await denied(request, principal, f"a {principal.role.value} may not do this", "role",
                               township=code)
        if code is not None and not principal.covers_township(str(code)):
            raise await denied(request, principal, f"township {code} is outside your scope", "scope", township=code)
        prefix = request.path_params.get("prefix")
        if prefix is not None and not principal.covers_region(str(prefix)):
            raise await denied(request, principal, f"region {prefix} is outside your scope", "scope",
                               detail=f"region {prefix}")
        if request.method in _STATE_CHANGING and request.scope["state"].get("via_cookie"):
            expected = csrf.session_csrf(request.scope["state"]["token"])
            if not csrf.matches(expected, await csrf.presented_token(request)):
                raise await denied(request, principal, "missing or wrong CSRF token; reload the page", "csrf",
                                   township=code)
        return principal

    dependency.__permission__ = permission  # type: ignore[attr-defined]
    dependency.__page__ = page  # type: ignore[attr-defined]
    return Depends(dependency)


def flat_routes(routes: list[BaseRoute]) -> Iterator[Any]:
    """Every route of an app, routers included: FastAPI resolves an included router lazily in recent
    releases (a route context per included route, with the router's dependencies added), and copies
    its routes into the app in older ones; both come out here as objects with ``path``, ``methods``
    and ``dependant`` (or a Mount's ``app``)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            for context in contexts():
                original = getattr(context, "original_route", None)
                yield original if isinstance(original, Mount) else context
        else:
            yield route


def _dependants(route: Any) -> Iterator[Any]:
    stack = [route.dependant] if getattr(route, "dependant", None) is not None else []
    while stack:
        dependant = stack.pop()
        yield dependant
        stack.extend(dependant.dependencies)


def route_permissions(route: Any) -> list[Permission]:
    """The permissions a route declares, through its own or its router's dependencies."""
    return [d.call.__permission__ for d in _dependants(route) if hasattr(d.call, "__permission__")]


def route_is_page(route: Any) -> bool:
    return any(getattr(d.call, "__page__", False) for d in _dependants(route))


def public_mount(app: Any) -> Any:
    """Mark a mounted ASGI app (say, StaticFiles for the pages' stylesheets) as public on purpose."""
    app.__permission__ = Permission.PUBLIC
    return app


def check_routes(routes: list[BaseRoute]) -> None:
    """Raise ``RouteWithoutPermission`` naming every route that declares no permission."""
    missing: list[str] = []
    for route in flat_routes(routes):
        if isinstance(route, Mount):
            if not hasattr(route.app, "__permission__"):
                missing.append(f"mount {route.path}")
        elif getattr(route, "dependant", None) is not None:
            if not route_permissions(route):
                missing.append(f"{','.join(sorted(getattr(route, 'methods', None) or []))} {route.path}")
        else:
            missing.append(f"{type(route).__name__} {getattr(route, 'path', '?')}")
    if missing:
        raise RouteWithoutPermission("routes without a declared permission (use gateway.access.deps.require): "
                                     + "; ".join(missing))
