"""The sign-in routes: ``POST /auth/token`` (API clients), ``POST /login`` and ``POST /logout``
(browsers), ``GET /auth/me``. The GET /login page itself belongs to gateway/web and renders the error
codes this module redirects with: bad_credentials, otp_required, otp_wrong, disabled, csrf.

Too many attempts (gateway/access/throttle.py) answer 429 with ``Retry-After``, on both routes. A
username (or code) with control characters is refused before anything looks it up: 422 on the API,
``bad_credentials`` on the form, and nothing of it is recorded.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm

from gateway.api import limits

from gateway.access import csrf
from gateway.access.deps import require, source_address
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.access.service import AccessService, SignInRefused, Throttled
from gateway.access.text import has_control_characters

router = APIRouter(tags=["sign-in"])

LOGIN_ERRORS = (*SignInRefused.CODES, "csrf")
CONTROL_CHARACTERS = "username and one-time code must not contain control characters"


def _unsafe(username: str, password: str, otp: str) -> bool:
    # NUL is refused in the password too: PostgreSQL cannot hold it, and no password has one.
    return has_control_characters(username) or has_control_characters(otp) or "\x00" in password


def _throttled_headers(exc: Throttled) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)}


def _access(request: Request) -> AccessService:
    access = getattr(request.app.state.gateway, "access", None)
    if access is None:
        raise HTTPException(503, "this gateway has no account database")
    return access


def safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//host`` or ``https://…`` (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.post("/auth/token")
async def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    _: Annotated[Principal | None, require(Permission.PUBLIC)],
    otp: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    """OAuth2 password grant: ``username``, ``password`` and, for operator, auditor and admin, ``otp``."""
    if _unsafe(form.username, form.password, otp):
        raise HTTPException(422, CONTROL_CHARACTERS)
    try:
        signed = await _access(request).sign_in(form.username, form.password, otp, source=source_address(request))
    except SignInRefused as exc:
        raise HTTPException(401, exc.code, headers={"WWW-Authenticate": "Bearer"}) from None
    except Throttled as exc:
        raise HTTPException(429, "too many sign-in attempts; try again later", headers=_throttled_headers(exc)) from None
    return {"access_token": signed.token, "token_type": "bearer", "expires_in": signed.expires_in}


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    _: Annotated[Principal | None, require(Permission.PUBLIC)],
    otp: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    # Double-submit: the form repeats the pre-session cookie (or the token of the session it has).
    expected = [request.cookies.get(csrf.LOGIN_CSRF_COOKIE)]
    if request.cookies.get(csrf.SESSION_COOKIE):
        expected.append(csrf.session_csrf(request.cookies[csrf.SESSION_COOKIE]))
    target = safe_next(next)
    back = f"&next={target}" if target != "/" else ""
    if not any(e and csrf.matches(e, csrf_token) for e in expected):
        return RedirectResponse(f"/login?error=csrf{back}", status_code=303)
    if _unsafe(username, password, otp):
        return RedirectResponse(f"/login?error=bad_credentials{back}", status_code=303)
    try:
        signed = await _access(request).sign_in(username, password, otp, source=source_address(request))
    except SignInRefused as exc:
        return RedirectResponse(f"/login?error={exc.code}{back}", status_code=303)
    except Throttled as exc:
        minutes = max(1, -(-exc.retry_after // 60))
        return HTMLResponse(
            f'<!doctype html><meta charset="utf-8"><title>登录</title><p role="alert">登录尝试过于频繁，'
            f'请 {minutes} 分钟后再试。</p><p><a href="/login">返回登录</a></p>',
            status_code=429, headers=_throttled_headers(exc))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(csrf.SESSION_COOKIE, signed.token, **csrf.cookie_flags(request))  # type: ignore[arg-type]
    response.delete_cookie(csrf.LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout", openapi_extra=limits.form())  # the sign-out button posts a form (csrf_token)
async def logout(request: Request, principal: Annotated[Principal, require(Permission.SIGNED_IN, page=True)]) -> RedirectResponse:
    """Revokes the session (cookie or bearer token) in the database, not just in the browser."""
    token = request.scope["state"]["token"]
    await _access(request).sign_out(token, principal, source=source_address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(csrf.SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me")
async def me(principal: Annotated[Principal, require(Permission.SIGNED_IN)]) -> dict[str, Any]:
    return {"username": principal.username, "role": principal.role.value, "scope": principal.scope}
