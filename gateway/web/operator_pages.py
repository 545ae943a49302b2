"""The operator's page `/operator`: health, queues and consumer lag, outbox backlog, the quarantine with
its reasons and a re-drive button. No personal data: envelopes are never decrypted here."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api import limits
from gateway.api.operator import ItemId
from gateway.access.audit import Action
from gateway.access.deps import require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.api.operator import _audit, queues_view
from gateway.exchange.refusals import REFUSAL_REASONS
from gateway.exchange.redrive import NotQuarantined, RedriveRefused, redrive_quarantined
from gateway.web.context import page

router = APIRouter()

Operator = Annotated[Principal, require(Permission.OPERATE, page=True)]

STATE_LABELS = {"ok": "正常", "degraded": "异常", "disconnected": "未连接", "blocked": "被阻塞（磁盘或内存告警）"}
# What a re-drive from this page did: the only texts ``?done=`` can show (a fixed key, never the
# request's own text; the item's number comes as ``item``, an integer).
DONE_MESSAGES = {
    "stored": "隔离报文 {item}：已重新投递并接收",
    "duplicate": "隔离报文 {item}：已接收过（重复）",
    "refused": "隔离报文 {item}：仍被拒收{reason}",
    "not_found": "没有隔离报文 {item}",
    "truncated": "隔离报文 {item} 不能重新投递：只保存了报文的前一部分，请对方重新发送",
    "resolved": "隔离报文 {item} 已重新投递并接收过，无需再投递",
    "in_progress": "隔离报文 {item} 正在由他人重新投递",
}
BUCKET_LABELS = {"signed": "签名有效", "unsigned": "未通过认证"}
# How far back the page's refusal counts go.
COUNT_HOURS = 24


def done_message(done: str, item: int | None, reason: str = "") -> str:
    """The status line for ``?done=``: a fixed message, the item's number, and a refusal reason only when
    it is one the gateway gives (REFUSAL_REASONS), never the request's own text."""
    template = DONE_MESSAGES.get(done)
    if template is None:
        return ""
    named = f"（{reason}）" if reason in REFUSAL_REASONS else ""
    return template.format(item=item if item is not None else "", reason=named)


@router.get("/operator", response_class=HTMLResponse)
async def operator_page(request: Request, principal: Operator, done: str = "",
                        item: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None, reason: str = "") -> Response:
    gw = request.app.state.gateway
    health = await gw.health()
    queues = await queues_view(gw)
    backlog = await gw.store.outbox_backlog(gw.clock.now())
    items = await gw.store.list_quarantine(100)
    counts = await gw.store.refusal_counts(gw.clock.now() - timedelta(hours=COUNT_HOURS), 100)
    return page(request, principal, "operator.html", health=health, states=STATE_LABELS, queues=queues,
                backlog=backlog, items=items, counts=counts, buckets=BUCKET_LABELS, count_hours=COUNT_HOURS,
                counted_only=sum(c.counted_only for c in counts), flash=done_message(done, item, reason))


@router.post("/operator/page/quarantine/{item_id}/redrive", openapi_extra=limits.form())
async def redrive_from_page(item_id: ItemId, request: Request, principal: Operator) -> Response:
    gw = request.app.state.gateway
    try:
        result = await redrive_quarantined(gw.service, gw.store, gw.clock, item_id)
    except NotQuarantined:
        await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", "not_found")
        return _done("not_found", item_id)
    except RedriveRefused as exc:  # accepted already, being re-driven by another operator, or kept only in part
        await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", "refused")
        return _done(exc.code, item_id)
    await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", result.result, result.reason or "")
    return _done(result.result, item_id, result.reason or "")


def _done(code: str, item_id: int, reason: str = "") -> RedirectResponse:
    named = f"&reason={reason}" if reason in REFUSAL_REASONS else ""
    return RedirectResponse(f"/operator?done={code}&item={item_id}{named}", status_code=303)
