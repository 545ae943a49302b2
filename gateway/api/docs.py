"""``/docs`` and ``/openapi.json`` for signed-in users, with Swagger UI served by this gateway.

An office network has no CDN: the Swagger UI script, stylesheet and icon come from the
``fastapi-offline`` package installed from PyPI (its ``static`` folder), mounted at
``/docs/assets``, never copied into the repository. The assets are the public Swagger UI code,
so the mount is public; the spec and the page are not.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from gateway.access.deps import public_mount, require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal

ASSETS = "/docs/assets"


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_script_policy(page: HTMLResponse) -> HTMLResponse:
    """Swagger UI starts from an inline script: the page's Content-Security-Policy allows that script
    by its hash (and the assets from here), not inline scripts at large (gateway/api/security_headers)."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
                      for m in _INLINE_SCRIPT.findall(bytes(page.body).decode()))
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    return page


def install(app: FastAPI) -> None:
    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Annotated[Principal, require(Permission.SIGNED_IN)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(_: Annotated[Principal, require(Permission.SIGNED_IN, page=True)]) -> HTMLResponse:
        return with_script_policy(get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=app.title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            # No online validator badge: it would call validator.swagger.io with the spec.
            swagger_ui_parameters={"validatorUrl": None},
        ))

    app.mount(ASSETS, public_mount(StaticFiles(directory=assets_dir())), name="docs-assets")
