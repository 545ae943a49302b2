"""Supervisor routes: a region's open and overdue cases, without personal data.

A supervisor's region is a 2-, 4- or 6-digit division prefix; ``require`` refuses a ``{prefix}``
outside it. What comes back is what the lists need and nothing decrypted: case id, the two
townships, kind, dates and state (no citizen id, no name).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request

from gateway.access.deps import require
from gateway.access.permissions import Permission
from gateway.access.principal import Principal
from gateway.workflow.cases import Case
from gateway.workflow.periods import ReportingMonth, reporting_month_of, served

router = APIRouter(prefix="/regions", tags=["supervisor"])
Supervisor = Annotated[Principal, require(Permission.REGION_READ)]


def case_summary(case: Case) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "kind": str(case.kind),
        "residence_township": case.residence_township,
        "registration_township": case.registration_township,
        "received_at": case.received_at.isoformat(),
        "reporting_month": str(case.reporting_month),
        "due_at": case.deadline.due_at.isoformat(),
        "state": str(case.state),
    }


def _prefix(prefix: str) -> str:
    if len(prefix) not in (2, 4, 6, 9) or not prefix.isdigit():
        raise HTTPException(422, "a region is a 2-, 4- or 6-digit division prefix (or a 9-digit township)")
    return prefix


@router.get("/{prefix}/cases")
async def region_cases(prefix: str, request: Request, _: Supervisor) -> list[dict[str, Any]]:
    """Open cases whose registration township lies in the region, by deadline."""
    tracker = request.app.state.gateway.tracker
    if tracker is None:
        return []
    _prefix(prefix)
    found = [c for c in await tracker.store.open_cases() if c.registration_township.startswith(prefix)]
    return [case_summary(c) for c in sorted(found, key=lambda c: (c.deadline.due_at, c.case_id))]


@router.get("/{prefix}/overdue")
async def region_overdue(prefix: str, request: Request, _: Supervisor, month: str | None = None) -> list[dict[str, Any]]:
    """Cases of a reporting month (default: the current one) past their deadline and still unanswered."""
    gateway = request.app.state.gateway
    if gateway.tracker is None:
        return []
    now = gateway.clock.now()
    try:
        period = served(ReportingMonth.parse(month)) if month else reporting_month_of(now)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return [case_summary(c) for c in await gateway.tracker.store.overdue_cases(_prefix(prefix), period, now)]


@router.get("/{prefix}/missed")
async def region_missed(prefix: str, request: Request, _: Supervisor) -> list[dict[str, Any]]:
    """漏管 charges against townships in the region: the townships, month, instant and the query ids."""
    tracker = request.app.state.gateway.tracker
    if tracker is None:
        return []
    _prefix(prefix)
    return [
        {"registration_township": c.registration_township, "residence_township": c.key.residence_township,
         "reporting_month": str(c.reporting_month), "charged_at": c.charged_at.isoformat(),
         "evidence_query_ids": list(c.evidence_query_ids)}
        for c in await tracker.store.charges() if c.registration_township.startswith(prefix)
    ]
