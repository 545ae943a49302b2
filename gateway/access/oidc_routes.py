"""``GET /auth/oidc/login`` and ``GET /auth/oidc/callback``: signing in through the identity provider.

The browser leaves with a fresh ``state``, ``nonce`` and PKCE verifier kept in a short-lived HttpOnly
cookie (``gw_oidc``, SameSite=Lax: it must come back on the provider's top-level redirect) and
returns with a code; the callback checks the state, redeems the code, verifies the ID token and ends
in the same session cookie as ``POST /login`` (``AccessService.sign_in_identity``). A refusal is
audited and sent to ``/login?error=<code>`` like a refused password.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.access import csrf
from gateway.access.deps import require, source_address
from gateway.access.oidc import OidcClient, OidcProblem, Pending
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.access.routes import _access, safe_next
from gateway.access.service import SignInRefused

router = APIRouter(tags=["sign-in"])

PENDING_COOKIE = "gw_oidc"
PENDING_PATH = "/auth/oidc"
PENDING_MAX_AGE_S = 600
Public = Annotated[Principal | None, require(Permission.PUBLIC)]


def _oidc(request: Request) -> OidcClient:
    client = getattr(request.app.state.gateway, "oidc", None)
    if client is None:
        raise HTTPException(404, "this gateway has no identity provider (GATEWAY_OIDC_ISSUER)")
    return client


def _redirect_uri(request: Request, client: OidcClient) -> str:
    return client.config.redirect_url or str(request.url_for("oidc_callback"))


def _pack(pending: Pending) -> str:
    doc = {"s": pending.state, "n": pending.nonce, "v": pending.verifier, "x": pending.next}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def _unpack(value: str | None) -> Pending | None:
    if not value or len(value) > 2048:
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(value.encode()))
        return Pending(state=str(doc["s"]), nonce=str(doc["n"]), verifier=str(doc["v"]), next=safe_next(doc["x"]))
    except (ValueError, KeyError, TypeError):
        return None


def _refused(code: str, target: str) -> RedirectResponse:
    back = f"&next={target}" if target != "/" else ""
    response = RedirectResponse(f"/login?error={code}{back}", status_code=303)
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    return response


@router.get("/auth/oidc/login")
async def oidc_login(request: Request, _: Public, next: str = "/") -> Response:
    """Off to the identity provider (authorization code flow with PKCE)."""
    client = _oidc(request)
    pending = Pending(next=safe_next(next))
    try:
        url = await client.authorization_url(pending, _redirect_uri(request, client))
    except OidcProblem as exc:
        await _access(request).refuse_identity("", exc.code, exc.reason, source_address(request))
        return _refused(exc.code, pending.next)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(PENDING_COOKIE, _pack(pending), max_age=PENDING_MAX_AGE_S, path=PENDING_PATH, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")
    return response


@router.get("/auth/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request, _: Public, code: str = "", state: str = "", error: str = "") -> Response:
    client = _oidc(request)
    access = _access(request)
    source = source_address(request)
    pending = _unpack(request.cookies.get(PENDING_COOKIE))
    target = pending.next if pending else "/"
    claims: dict[str, object] = {}
    try:
        if error:
            raise OidcProblem("oidc_failed", f"the provider answered {error[:60]!r}")
        if pending is None:
            raise OidcProblem("oidc_failed", "no sign-in under way in this browser (cookie missing or expired)")
        if not state or not secrets.compare_digest(state.encode(), pending.state.encode()):
            raise OidcProblem("oidc_failed", "state does not match this browser's sign-in")
        if not code:
            raise OidcProblem("oidc_failed", "the provider sent no code")
        claims = await client.exchange(code, pending, _redirect_uri(request, client))
        identity = client.identity(claims)
    except OidcProblem as exc:
        await access.refuse_identity(client.claimed_username(claims), exc.code, exc.reason, source)
        return _refused(exc.code, target)
    try:
        signed = await access.sign_in_identity(identity, source=source)
    except SignInRefused as exc:
        return _refused(exc.code, target)
    # The session cookie is SameSite=Strict, and this request is the end of a redirect chain that
    # began at the provider's site: a browser would not send the cookie on a redirect from here.
    # A same-site page that moves on by itself makes the next request a same-site one.
    page = (f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={html.escape(target)}">'
            f'<title>Signed in</title><p><a href="{html.escape(target)}">Continue</a></p>')
    response = HTMLResponse(page)
    response.set_cookie(csrf.SESSION_COOKIE, signed.token, **csrf.cookie_flags(request))  # type: ignore[arg-type]
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    response.delete_cookie(csrf.LOGIN_CSRF_COOKIE, path="/")
    return response
