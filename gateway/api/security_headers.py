"""Response headers that keep the browser on the gateway's side (issue 24, item 4).

Every response gets:

* ``Cache-Control: no-store`` — pages, the inbox and messages, exports all carry decrypted personal
  data, which must not stay in a browser's or a proxy's cache (a shared office computer). Only the
  static assets of ``/docs`` may be cached. A route that set its own Cache-Control keeps it.
* ``Content-Security-Policy`` — the pages run no script at all and inline one stylesheet, allowed by
  its hash; forms post only here; no site may frame them (``frame-ancestors 'none'``, and
  ``X-Frame-Options: DENY`` for older browsers). A route that set its own policy keeps it (``/docs``:
  Swagger UI needs its script).
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (a message id in an address
  never leaves with a link).
* ``Strict-Transport-Security`` when the request came over HTTPS — straight (GATEWAY_HTTP_TLS_CERT) or
  through a proxy in GATEWAY_FORWARDED_ALLOW_IPS that says ``X-Forwarded-Proto: https`` (uvicorn then
  gives the request the scheme https). Never over plain HTTP, where it would mean nothing.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.web.render import stylesheet_csp_source

CACHEABLE_PREFIXES = ("/docs/assets/",)


def page_policy() -> str:
    return ("default-src 'none'; "
            f"style-src {stylesheet_csp_source()}; "
            "img-src 'self' data:; "
            "form-action 'self'; "
            "frame-ancestors 'none'; "
            "base-uri 'none'")


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers above to every HTTP response."""

    def __init__(self, app: ASGIApp, *, hsts_max_age_s: int) -> None:
        self.app = app
        self.policy = page_policy()
        self.hsts = f"max-age={hsts_max_age_s}" if hsts_max_age_s else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(CACHEABLE_PREFIXES)
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if not cacheable and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = self.policy
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if https and self.hsts:
                    headers["Strict-Transport-Security"] = self.hsts
            await send(message)

        await self.app(scope, receive, with_headers)
