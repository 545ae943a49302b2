"""The supervisors' dashboard: `/dashboard?region=CODE&period=P`, its export and its print view."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from openpyxl import Workbook

from gateway.codec.text_hygiene import spreadsheet_row
from gateway.access.deps import denied, require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.web.context import layout, page
from gateway.web.dashboard_data import DashboardReader, current_period
from gateway.web.dashboard_view import TABLE_HEADERS, BadRequest, DashboardView, build_dashboard, check_region
from gateway.web.render import render_dashboard

router = APIRouter()

Supervisor = Annotated[Principal, require(Permission.REGION_READ, page=True)]


def reader(request: Request) -> DashboardReader:
    found = getattr(request.app.state, "dashboard_reader", None)
    if found is None:
        gateway = request.app.state.gateway
        found = request.app.state.dashboard_reader = DashboardReader(gateway.engine, gateway.tracker.calendar)
    return found


class Unavailable(RuntimeError):
    """A gateway without a database (the in-memory fakes) has nothing to count."""


async def _view(request: Request, principal: Principal, region: str | None, period: str | None) -> DashboardView:
    region = check_region(region or principal.scope)
    if not principal.covers_region(region):
        raise PermissionError(region)
    if request.app.state.gateway.engine is None:
        raise Unavailable("本网关没有数据库，无法统计反馈情况。")
    now = request.app.state.gateway.clock.now()
    return await build_dashboard(reader(request), region, period or str(current_period(now)), now)


async def _refused(request: Request, principal: Principal, exc: Exception) -> HTMLResponse:
    if isinstance(exc, PermissionError):
        await denied(request, principal, "region outside the scope", "scope", detail=f"region {exc.args[0]}")
        return page(request, principal, "error.html", status_code=403, title="无权查看",
                    message=f"您的权限范围不包括地区 {exc.args[0]}。")
    if isinstance(exc, Unavailable):
        return page(request, principal, "error.html", status_code=503, title="暂时无法统计", message=str(exc))
    return page(request, principal, "error.html", status_code=400, title="请求有误", message=str(exc))


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, principal: Supervisor, region: str | None = None,
                    period: str | None = None) -> Response:
    try:
        view = await _view(request, principal, region, period)
    except (BadRequest, PermissionError, Unavailable) as exc:
        return await _refused(request, principal, exc)
    return HTMLResponse(render_dashboard(view, **layout(request, principal)))


@router.get("/dashboard/print", response_class=HTMLResponse)
async def dashboard_print(request: Request, principal: Supervisor, region: str | None = None,
                          period: str | None = None) -> Response:
    try:
        view = await _view(request, principal, region, period)
    except (BadRequest, PermissionError, Unavailable) as exc:
        return await _refused(request, principal, exc)
    return HTMLResponse(render_dashboard(view, print_view=True, **layout(request, principal)))


@router.get("/dashboard/export")
async def dashboard_export(request: Request, principal: Supervisor, region: str | None = None,
                           period: str | None = None, format: str = "csv") -> Response:
    """Exactly the region table on screen: the same rows, columns and formatted values."""
    try:
        view = await _view(request, principal, region, period)
    except (BadRequest, PermissionError, Unavailable) as exc:
        return await _refused(request, principal, exc)
    name = f"dashboard-{view.region}-{view.period_text}"
    if format == "xlsx":
        book = Workbook()
        sheet = book.active
        sheet.title = view.period_text
        sheet.append(spreadsheet_row(TABLE_HEADERS))
        for row in view.table:
            sheet.append(spreadsheet_row(row))
        out = io.BytesIO()
        book.save(out)
        return Response(out.getvalue(), media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"content-disposition": f'attachment; filename="{name}.xlsx"'})
    if format != "csv":
        return await _refused(request, principal, BadRequest(f"导出格式应为 csv 或 xlsx，收到“{format[:8]}”"))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(spreadsheet_row(TABLE_HEADERS))
    writer.writerows(spreadsheet_row(row) for row in view.table)
    # With a byte-order mark: Excel on a Chinese Windows opens UTF-8 CSV correctly only then.
    return Response(("\ufeff" + text.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}.csv"'})

