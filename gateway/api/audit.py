"""The auditor's routes (the audit trail over HTTP) and the admin's account list."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request

from gateway.access.audit import Action, AuditEntry
from gateway.access.deps import require, source_address
from gateway.access.permissions import Permission
from gateway.access.principal import Principal

router = APIRouter()
Auditor = Annotated[Principal, require(Permission.AUDIT_READ)]
Admin = Annotated[Principal, require(Permission.ACCOUNTS_MANAGE)]


def _access(request: Request) -> Any:
    access = request.app.state.gateway.access
    if access is None:
        raise HTTPException(503, "this gateway has no account database")
    return access


@router.get("/audit", tags=["audit"])
async def audit_list(request: Request, principal: Auditor, user: str | None = None, since: datetime | None = None,
                     limit: int = 1000) -> list[dict[str, Any]]:
    """Audit records in order (``user``: only that user's; ``since``: an ISO 8601 instant), at most ``limit``."""
    access = _access(request)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    out: list[dict[str, Any]] = []
    async for record in access.audit.records(username=user, since=since):
        out.append(record.as_json())
        if len(out) >= max(1, min(limit, 10_000)):
            break
    # Reading the trail is itself recorded: who looked at whose actions.
    await access.audit.record(AuditEntry(Action.AUDIT_READ, principal.username, principal.role.value,
                                         source_address(request), object_id=user or "", detail=f"{len(out)} records"))
    return out


@router.get("/audit/verify", tags=["audit"])
async def audit_verify(request: Request, _: Auditor) -> dict[str, Any]:
    report = await _access(request).audit.verification()
    broken = report.broken
    return {"ok": broken is None, "records": report.records, "broken": str(broken) if broken else None,
            # where the chain starts and ends, and the head kept outside the database it was checked against
            "reason": broken.reason if broken else None, "first_seq": report.anchor_seq, "head_seq": report.head_seq,
            "checkpoint_seq": report.checkpoint_seq}


@router.get("/admin/users", tags=["admin"])
async def users(request: Request, _: Admin) -> list[dict[str, Any]]:
    now = request.app.state.gateway.clock.now()
    return [{"username": u.username, "role": u.role.value, "scope": u.scope, "disabled": u.disabled,
             "locked": u.locked_at(now), "second_factor": u.totp_secret is not None,
             "created_at": u.created_at.isoformat()}
            for u in await _access(request).store.list_users()]
