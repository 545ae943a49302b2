"""Operator routes: the quarantine (list, inspect, re-drive), the outbox backlog, queue depths and the
poison queue. Included by ``create_app``; the same views back the `gateway quarantine|outbox|queues` CLI.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from gateway.api.limits import Limit

from gateway.bootstrap import Gateway
from gateway.exchange.records import OutboxBacklog, QuarantineItem
from gateway.exchange.redrive import NotQuarantined, redrive_quarantined


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]
# A row id: larger numbers cannot be stored, and would reach the database as an overflow (500).
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]

router = APIRouter(prefix="/operator", tags=["operator"])


def quarantine_view(q: QuarantineItem, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": q.id, "received_at": q.received_at.isoformat(), "reason": q.reason, "detail": q.detail,
        "message_id": q.message_id, "sender": q.sender, "recipient": q.recipient, "kind": q.kind,
        "envelope_sha256": q.envelope_sha256, "size": len(q.raw),
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
async def list_quarantine(gw: GatewayDep, limit: Limit = 100, unresolved: bool = False) -> list[dict[str, Any]]:
    items = await gw.store.list_quarantine(limit)
    return [quarantine_view(q) for q in items if not (unresolved and q.resolved)]


@router.get("/quarantine/{item_id}")
async def show_quarantine(item_id: ItemId, gw: GatewayDep) -> dict[str, Any]:
    item = await gw.store.get_quarantine(item_id)
    if item is None:
        raise HTTPException(404, f"no quarantined message {item_id}")
    return quarantine_view(item, detail=True)


@router.post("/quarantine/{item_id}/redrive")
async def redrive(item_id: ItemId, gw: GatewayDep) -> dict[str, Any]:
    try:
        result = await redrive_quarantined(gw.service, gw.store, gw.clock, item_id)
    except NotQuarantined as exc:
        raise HTTPException(404, str(exc)) from None
    return {"id": result.item_id, "result": result.result, "reason": result.reason, "detail": result.detail}


@router.get("/outbox")
async def outbox(gw: GatewayDep) -> dict[str, Any]:
    return backlog_view(await gw.store.outbox_backlog(gw.clock.now()))


@router.get("/queues")
async def queues(gw: GatewayDep) -> list[dict[str, Any]]:
    """Ready messages per queue: the inbox's is the consumer lag, the poison queue's what waits for an operator."""
    return await queues_view(gw)


@router.post("/poison/redrive")
async def redrive_poison(gw: GatewayDep, limit: Limit = 1000) -> dict[str, Any]:
    move = getattr(gw.broker, "redrive_poison", None)
    if move is None:
        raise HTTPException(501, "this broker has no poison queue")
    return {"moved": await move(limit)}
