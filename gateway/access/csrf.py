"""CSRF tokens for the browser's forms.

A signed-in browser's token is derived from its session token (SHA-256 of a label and the token):
the session cookie is HttpOnly, so a page on another site can neither read it nor compute the CSRF
token; nothing more is stored. Before sign-in (the /login form) the token is a double-submit cookie:
a random value set as a cookie and repeated in the form; another site can make the browser send the
cookie but cannot read it to repeat it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "gw_session"
LOGIN_CSRF_COOKIE = "gw_login_csrf"
CSRF_FIELD = "csrf_token"  # the hidden form field
CSRF_HEADER = "x-csrf-token"  # for scripts that send JSON with the session cookie
_STATE_NEW = "login_csrf_new"


def session_csrf(session_token: str) -> str:
    return hashlib.sha256(b"gateway csrf\x00" + session_token.encode()).hexdigest()


def csrf_token(request: Request) -> str:
    """The token to put in every form of a page (``<input type="hidden" name="csrf_token">``).

    For a page served to a browser signed in by cookie: derived from its session. Otherwise (the
    /login page): the pre-session token, set as a cookie on the response if the browser has none."""
    state = request.scope.setdefault("state", {})
    session = request.cookies.get(SESSION_COOKIE)
    if session and state.get("via_cookie"):
        return session_csrf(session)
    existing = request.cookies.get(LOGIN_CSRF_COOKIE) or state.get(_STATE_NEW)
    if existing:
        return existing
    token = secrets.token_urlsafe(32)
    state[_STATE_NEW] = token
    return token


def matches(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), str(presented).encode())


async def presented_token(request: Request) -> str | None:
    """The CSRF token a request carries: the header, else the form field of a form body."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        await request.body()  # cached: the route can still read the body or the form after us
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def cookie_flags(request: Request) -> dict[str, object]:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": "/"}


class LoginCsrfCookie:
    """Sets the pre-session CSRF cookie on a response whose page asked for a new token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            token = scope.get("state", {}).get(_STATE_NEW)
            if message["type"] == "http.response.start" and token:
                secure = "; Secure" if scope.get("scheme") == "https" else ""
                cookie = f"{LOGIN_CSRF_COOKIE}={token}; HttpOnly; Path=/; SameSite=Strict{secure}"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, sending)
