"""What every page's layout needs: who is signed in, the navigation of their role, the CSRF token."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from gateway.access.deps import csrf_token
from gateway.access.principal import Principal, Role
from gateway.web.dashboard_view import region_name
from gateway.web.render import render

ROLE_LABELS = {Role.CLERK: "乡镇操作员", Role.SUPERVISOR: "督导", Role.OPERATOR: "运维", Role.AUDITOR: "审计",
               Role.ADMIN: "账号管理员"}


def start_page(principal: Principal) -> str:
    """Where `/` takes each role."""
    if principal.role is Role.CLERK:
        return f"/township/{principal.scope}/inbox"
    if principal.role is Role.SUPERVISOR:
        return f"/dashboard?region={principal.scope}"
    if principal.role is Role.OPERATOR:
        return "/operator"
    return "/account"


def nav(principal: Principal) -> list[tuple[str, str]]:
    if principal.role is Role.CLERK:
        base = f"/township/{principal.scope}"
        return [(f"{base}/inbox", "收件箱"), (f"{base}/send/query", "发送查询"), (f"{base}/send/notification", "发送通报"),
                (f"{base}/sent", "已发送"), (f"{base}/tasks", "复核任务"), (f"{base}/reminders", "提醒"),
                (f"{base}/upload", "信息卡导入")]
    if principal.role is Role.SUPERVISOR:
        return [(f"/dashboard?region={principal.scope}", "反馈情况")]
    if principal.role is Role.OPERATOR:
        return [("/operator", "运行状态")]
    return []


def layout(request: Request, principal: Principal | None, current: str = "") -> dict[str, Any]:
    """The base layout's context: user, role, navigation (the current entry marked), CSRF token, time."""
    out: dict[str, Any] = {"principal": principal, "csrf": csrf_token(request), "now": request.app.state.gateway.clock.now(),
                           "current": current or request.url.path, "nav": [], "role_label": "", "scope_name": ""}
    if principal is not None:
        entries = nav(principal)
        if not current and request.url.path == "/dashboard" and entries:
            out["current"] = entries[0][0]
        out.update(nav=entries, role_label=ROLE_LABELS.get(principal.role, str(principal.role)),
                   scope_name=region_name(principal.scope) if principal.scope else "")
    return out


def page(request: Request, principal: Principal | None, template: str, *, status_code: int = 200,
         current: str = "", **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **{**layout(request, principal, current), **context}), status_code=status_code)
