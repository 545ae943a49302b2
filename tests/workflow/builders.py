"""Small builders so tests read like the rules."""

from __future__ import annotations

from datetime import datetime
from itertools import count

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, open_case
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet

RESIDENCE = "440106001"  # Guangzhou, Tianhe district, a township
REGISTRATION = "430521101"  # Hunan, Shaoyang county, a township
CITIZEN = "43052119900101002X"

_ids = count(1)


def a_query(
    received_at: datetime,
    rules: DeadlineRuleSet,
    calendar: WorkingDayCalendar,
    *,
    kind: CaseKind = CaseKind.QUERY,
    residence: str = RESIDENCE,
    registration: str = REGISTRATION,
    citizen_id: str = CITIZEN,
    case_id: str | None = None,
    resubmits: Case | None = None,
) -> Case:
    return open_case(
        case_id or f"q-{next(_ids)}",
        kind,
        residence,
        registration,
        citizen_id,
        received_at,
        rules,
        calendar,
        resubmits=resubmits,
    )
