"""Operator routes: the quarantine (list, inspect, re-drive), the outbox backlog, queue depths and the
poison queue. Included by ``create_app``; the same views back the `gateway quarantine|outbox|queues` CLI.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from gateway.api.limits import Limit

from gateway.access.audit import Action, AuditEntry
from gateway.access.deps import require, source_address
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.adapters.amqp import BrokerRightsMissing, BrokerUnavailable
from gateway.bootstrap import Gateway
from gateway.exchange.records import OutboxBacklog, QuarantineItem
from gateway.exchange.refusals import RefusalCount
from gateway.exchange.redrive import NotQuarantined, RedriveRefused, redrive_quarantined


async def _gateway(request: Request) -> Gateway:  # async: a plain def would run in a worker thread
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]
# A row id: larger numbers cannot be stored, and would reach the database as an overflow (500).
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]

Operator = Annotated[Principal, require(Permission.OPERATE)]

router = APIRouter(prefix="/operator", tags=["operator"])


async def _audit(gw: Gateway, principal: Principal, request: Request, action: str, object_id: str, result: str,
                 detail: str = "") -> None:
    if gw.access is not None:
        await gw.access.audit.record(AuditEntry(action, principal.username, principal.role.value,
                                                source_address(request), object_id=object_id, result=result,
                                                detail=detail))


def quarantine_view(q: QuarantineItem, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": q.id, "received_at": q.received_at.isoformat(), "reason": q.reason, "detail": q.detail,
        "message_id": q.message_id, "sender": q.sender, "recipient": q.recipient, "kind": q.kind,
        "envelope_sha256": q.envelope_sha256, "size": q.whole_size, "kept_bytes": len(q.raw),
        "truncated": q.truncated,
        "redriven_at": q.redriven_at.isoformat() if q.redriven_at else None, "resolved": q.resolved,
    }
    if detail:
        # The raw bytes are an envelope: encrypted, safe to show in part, never decrypted here.
        out["raw_head_hex"] = q.raw[:64].hex()
    return out


def backlog_view(b: OutboxBacklog) -> dict[str, Any]:
    return {"pending": b.pending, "due": b.due, "retrying": b.retrying,
            "oldest_created_at": b.oldest_created_at.isoformat() if b.oldest_created_at else None,
            "last_error": b.last_error}


async def queues_view(gateway: Gateway) -> list[dict[str, Any]]:
    depths = getattr(gateway.broker, "queue_depths", None)
    if depths is None:
        return []
    return [{"queue": d.queue, "ready": d.messages, "consumers": d.consumers} for d in await depths()]


@router.get("/quarantine")
async def list_quarantine(gw: GatewayDep, _: Operator, limit: Limit = 100, unresolved: bool = False) -> list[dict[str, Any]]:
    items = await gw.store.list_quarantine(limit)
    return [quarantine_view(q) for q in items if not (unresolved and q.resolved)]


def refusal_count_view(c: RefusalCount) -> dict[str, Any]:
    return {"hour": c.hour, "bucket": c.bucket, "sender": c.sender or None, "reason": c.reason,
            "refused": c.refused, "stored": c.stored, "counted_only": c.counted_only}


@router.get("/quarantine/counts")
async def quarantine_counts(gw: GatewayDep, _: Operator, hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24,
                            limit: Limit = 200) -> list[dict[str, Any]]:
    """Every refusal of the last ``hours`` per UTC hour, bucket, sender and reason, with how many were
    stored: beyond the quarantine's caps a refusal is counted only."""
    since = gw.clock.now() - timedelta(hours=hours)
    return [refusal_count_view(c) for c in await gw.store.refusal_counts(since, limit)]


@router.get("/quarantine/{item_id}")
async def show_quarantine(item_id: ItemId, gw: GatewayDep, _: Operator) -> dict[str, Any]:
    item = await gw.store.get_quarantine(item_id)
    if item is None:
        raise HTTPException(404, f"no quarantined message {item_id}")
    return quarantine_view(item, detail=True)


@router.post("/quarantine/{item_id}/redrive")
async def redrive(item_id: ItemId, gw: GatewayDep, principal: Operator, request: Request) -> dict[str, Any]:
    try:
        result = await redrive_quarantined(gw.service, gw.store, gw.clock, item_id)
    except NotQuarantined as exc:
        await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", "not_found")
        raise HTTPException(404, str(exc)) from None
    except RedriveRefused as exc:
        await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", "refused")
        raise HTTPException(409, str(exc)) from None
    await _audit(gw, principal, request, Action.REDRIVE, f"quarantine {item_id}", result.result, result.reason or "")
    return {"id": result.item_id, "result": result.result, "reason": result.reason, "detail": result.detail}


@router.get("/outbox")
async def outbox(gw: GatewayDep, _: Operator) -> dict[str, Any]:
    return backlog_view(await gw.store.outbox_backlog(gw.clock.now()))


@router.get("/queues")
async def queues(gw: GatewayDep, _: Operator) -> list[dict[str, Any]]:
    """Ready messages per queue: the inbox's is the consumer lag, the poison queue's what waits for an operator."""
    return await queues_view(gw)


@router.post("/poison/redrive")
async def redrive_poison(gw: GatewayDep, principal: Operator, request: Request, limit: Limit = 1000) -> dict[str, Any]:
    move = getattr(gw.broker, "redrive_poison", None)
    if move is None:
        raise HTTPException(501, "this broker has no poison queue")
    try:
        moved = await move(limit)
    except BrokerRightsMissing as exc:
        await _audit(gw, principal, request, Action.REDRIVE, "poison", "refused", "broker rights")
        raise HTTPException(403, str(exc)) from None
    except BrokerUnavailable as exc:
        await _audit(gw, principal, request, Action.REDRIVE, "poison", "unavailable")
        raise HTTPException(503, str(exc)) from None
    await _audit(gw, principal, request, Action.REDRIVE, "poison", "ok", f"moved {moved}")
    return {"moved": moved}


@router.get("/health")
async def health(gw: GatewayDep, _: Operator) -> JSONResponse:
    """The database's and the broker's state (the public /health says only ok or degraded)."""
    report = await gw.health()
    return JSONResponse(status_code=200 if report["status"] == "ok" else 503, content=report)
