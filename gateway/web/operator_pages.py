"""The operator's page `/operator`: health, queues and consumer lag, outbox backlog, the quarantine with
its reasons and a re-drive button. No personal data: envelopes are never decrypted here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api import limits
from gateway.api.operator import ItemId
from gateway.access.audit import Action
from gateway.access.deps import require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.api.operator import _audit, queues_view
from gateway.exchange.redrive import NotQuarantined, RedriveRefused, redrive_quarantined
from gateway.web.context import page

router = APIRouter()

Operator = Annotated[Principal, require(Permission.OPERATE, page=True)]

STATE_LABELS = {"ok": "正常", "degraded": "异常", "disconnected": "未连接", "blocked": "被阻塞（磁盘或内存告警）"}
# The results redrive_quarantined gives (gateway/exchange/redrive.py).
REDRIVE_LABELS = {"stored": "已重新投递并接收", "refused": "仍被拒收", "duplicate": "已接收过（重复）"}


@router.get("/operator", response_class=HTMLResponse)
async def operator_page(request: Request, principal: Operator, done: str = "") -> Response:
    gw = request.app.state.gateway
    health = await gw.health()
    queues = await queues_view(gw)
    backlog = await gw.store.outbox_backlog(gw.clock.now())
    items = await gw.store.list_quarantine(100)
    return page(request, principal, "operator.html", health=health, states=STATE_LABELS, queues=queues,
                backlog=backlog, items=items, flash=done[:200])


@router.post("/operator/page/quarantine/{item_id}/redrive", openapi_extra=limits.form())
async def redrive_from_page(item_id: ItemId, request: Request, principal: Operator) -> Response:
    gw = request.app.state.gateway
    try:
        result = await redrive_quarantined(gw.service, gw.store, gw.clock, item_id)
    except NotQuarantined:
        await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", "not_found")
        return RedirectResponse(f"/operator?done=没有隔离报文 {item_id}", status_code=303)
    except RedriveRefused as exc:  # accepted already, being re-driven by another operator, or kept only in part
        await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", "refused")
        return RedirectResponse(f"/operator?done=隔离报文 {item_id} 现在不能重新投递（{exc}）", status_code=303)
    await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", result.result, result.reason or "")
    label = REDRIVE_LABELS.get(result.result, result.result)
    reason = f"（{result.reason}）" if result.reason else ""
    return RedirectResponse(f"/operator?done=隔离报文 {item_id}：{label}{reason}", status_code=303)
