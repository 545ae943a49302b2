"""The clerks' workspace, the supervisors' dashboard and the operator's page: server-rendered HTML.

`install_pages(app)` adds them to the gateway's app (gateway.api.app.create_app): page routes and HTML
answers for refusals on page routes. The one stylesheet (static/site.css, 6 KB) is inlined in every page
by the layout: no asset route, nothing fetched from anywhere else.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PAGE_PREFIXES = ("/township/", "/dashboard", "/login")
PAGE_PATHS = ("/", "/operator")
TITLES = {403: "无权访问", 404: "没有找到"}


def _is_page(path: str) -> bool:
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIXES) or path.startswith("/operator/page/")


def install_pages(app: FastAPI) -> None:
    from gateway.web import clerk_pages, dashboard_pages, login_pages, operator_pages
    from gateway.web.context import page

    for module in (login_pages, dashboard_pages, clerk_pages, operator_pages):
        app.include_router(module.router)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> Response:
        # A person at a page gets a page saying why; API clients keep the JSON answer.
        if exc.status_code in TITLES and _is_page(request.url.path):
            principal = request.scope.get("state", {}).get("principal")
            message = "您没有权限查看此页面或此乡镇（街道）的数据。" if exc.status_code == 403 else "没有这个页面或这条记录。"
            return page(request, principal, "error.html", status_code=exc.status_code, title=TITLES[exc.status_code],
                        message=message)
        return await http_exception_handler(request, exc)
