"""``/docs`` and ``/openapi.json`` for signed-in users, with Swagger UI served by this gateway.

An office network has no CDN: the Swagger UI script, stylesheet and icon come from the
``fastapi-offline`` package installed from PyPI (its ``static`` folder), mounted at
``/docs/assets``, never copied into the repository. The assets are the public Swagger UI code,
so the mount is public; the spec and the page are not.
"""

from __future__ import annotations

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


def install(app: FastAPI) -> None:
    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Annotated[Principal, require(Permission.SIGNED_IN)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(_: Annotated[Principal, require(Permission.SIGNED_IN, page=True)]) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=app.title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            # No online validator badge: it would call validator.swagger.io with the spec.
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.mount(ASSETS, public_mount(StaticFiles(directory=assets_dir())), name="docs-assets")
