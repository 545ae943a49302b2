"""Small builders so tests read like the rules."""

from __future__ import annotations

from datetime import date, datetime, timezone
from itertools import count

from gateway.workflow.calendar import WorkingDayCalendar, YearSchedule
from gateway.workflow.cases import (
    Case,
    mark_missed_management,
    open_case,
    record_feedback,
    recompute_open_deadlines,
    withdraw,
)
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.instants import SHANGHAI
from gateway.workflow.periods import ReportingMonth
from gateway.workflow.strikes import MissedManagementCharge

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


# Test-only schedule: Monday 9 March 2026 becomes a day off, so open March deadlines move a day.
MOVED_MARCH_CALENDAR = WorkingDayCalendar.from_schedules(
    [YearSchedule(2026, holidays=frozenset({date(2026, 3, 9)}), source="test")], "test-moved"
)


def cases_of_every_fact(rules: DeadlineRuleSet, calendar: WorkingDayCalendar, registration: str = REGISTRATION) -> list[Case]:
    """Cases of March 2026 with one of each fact a close reads (open, found, 查无此人, 漏管, withdrawn, a
    deadline moved by a calendar update), plus one case of February. Ids name what they are."""

    def on(day: int, hour: int = 9, month: int = 3) -> datetime:
        return datetime(2026, month, day, hour, tzinfo=SHANGHAI).astimezone(timezone.utc)

    def query(case_id: str, received: datetime) -> Case:
        return a_query(received, rules, calendar, registration=registration, case_id=case_id)

    nsp = [record_feedback(query(f"nsp-{i}", on(2 + i)), on(5 + i), FeedbackResult.NO_SUCH_PERSON,
                           reason=NoSuchPersonReason.WRONG_ADDRESS) for i in range(3)]
    charge = MissedManagementCharge(nsp[-1].strike_key, tuple(c.case_id for c in nsp), on(8), ReportingMonth(2026, 3))
    (moved,) = recompute_open_deadlines([query("moved", on(2, 10))], MOVED_MARCH_CALENDAR, now=on(3))
    return [
        query("open", on(2)),
        record_feedback(query("found", on(2, 11)), on(4), FeedbackResult.FOUND),
        *nsp[:2],
        mark_missed_management(nsp[2], charge),
        withdraw(query("withdrawn", on(3)), on(4)),
        moved,
        query("february", on(10, month=2)),
    ]
