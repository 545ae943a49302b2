"""The sign-in page (its POST handler and sign-out belong to gateway.access) and the start page `/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.access.deps import require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.web.context import page, start_page

router = APIRouter()

LOGIN_ERRORS = {
    # Also the answer while an account is locked (5 attempts without a sign-in lock it for 15 minutes):
    # the page never tells whether a name exists or is locked.
    "bad_credentials": "用户名或密码不正确。连续 5 次登录未成功后，账号将锁定 15 分钟；急需登录请联系管理员解锁。",
    "locked": "登录失败次数过多，账号已暂时锁定，请稍后再试或联系管理员。",
    "otp_required": "此账号需要动态口令，请输入6位动态口令。",
    "otp_wrong": "动态口令不正确或已过期。",
    "disabled": "此账号已停用，请联系管理员。",
    "csrf": "页面已过期，请重新登录。",
    "oidc_failed": "统一身份认证登录未完成，请重试或联系管理员。",
    "oidc_role": "统一身份认证未给出有效的角色，请联系管理员。",
    "oidc_scope": "统一身份认证给出的辖区代码无效，请联系管理员。",
    "oidc_second_factor": "此角色须经统一身份认证的双因素认证后登录。",
    "oidc_username": "统一身份认证给出的用户名无效或与本地账号冲突，请联系管理员。",
}


def _safe_next(target: str) -> str:
    # Only a path on this site: never an absolute or scheme-relative address (an open redirect).
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, _: Annotated[object, require(Permission.PUBLIC, page=True)],
                     error: str | None = None, next: str = "/") -> Response:
    message = LOGIN_ERRORS.get(error or "", "登录失败。" if error else "")
    oidc = getattr(request.app.state.gateway, "oidc", None) is not None
    return page(request, None, "login.html", error=message, next=_safe_next(next), oidc=oidc,
                status_code=200)


@router.get("/")
async def start(principal: Annotated[Principal, require(Permission.SIGNED_IN, page=True)]) -> Response:
    return RedirectResponse(start_page(principal), status_code=303)
