"""A calendar change moves the deadlines of open cases only (R2); closed cases keep theirs."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from gateway.workflow.accounting import Counts, close_month
from gateway.workflow.calendar import WorkingDayCalendar, YearSchedule
from gateway.workflow.cases import CaseState, evaluate, record_feedback, recompute_open_deadlines
from gateway.workflow.data_files import load_calendar
from gateway.workflow.deadlines import DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.periods import ReportingMonth

from .builders import REGISTRATION, a_query
from .conftest import FakeClock, cst

V1 = WorkingDayCalendar.from_schedules([YearSchedule(2030, source="test")], "test-v1")
# Test-only schedule: Friday 8 March 2030 becomes a day off.
V2 = WorkingDayCalendar.from_schedules([YearSchedule(2030, holidays=frozenset({date(2030, 3, 8)}), source="test")], "test-v2")


def test_a_calendar_update_moves_only_open_deadlines(rules: DeadlineRuleSet) -> None:
    open_case_ = a_query(cst(2030, 3, 4, 9), rules, V1)
    closed = record_feedback(a_query(cst(2030, 3, 4, 9), rules, V1), cst(2030, 3, 6), FeedbackResult.FOUND)
    assert open_case_.deadline.last_working_day == date(2030, 3, 18)

    moved, kept = recompute_open_deadlines([open_case_, closed], V2, now=cst(2030, 3, 7, 12))

    assert moved.deadline.last_working_day == date(2030, 3, 19) and moved.deadline.calendar_version == "test-v2"
    assert moved.original_deadline.last_working_day == date(2030, 3, 18)
    assert "test-v2" in moved.history[-1].cause
    assert kept is closed and kept.deadline.calendar_version == "test-v1"


def test_an_overdue_case_whose_deadline_moved_later_is_due_soon_again(rules: DeadlineRuleSet, clock: FakeClock) -> None:
    case = evaluate(a_query(cst(2030, 3, 4, 9), rules, V1), clock.set(cst(2030, 3, 19, 1)))
    assert case.state is CaseState.OVERDUE
    (moved,) = recompute_open_deadlines([case], V2, now=clock.now)
    assert moved.state is CaseState.DUE_SOON
    assert moved.history[-1].to_state is CaseState.DUE_SOON and moved.history[-1].at == clock.now


def test_recomputing_with_the_same_calendar_version_changes_nothing(rules: DeadlineRuleSet) -> None:
    case = a_query(cst(2030, 3, 4, 9), rules, V1)
    assert recompute_open_deadlines([case], V1, now=cst(2030, 3, 5)) == [case]


def test_a_2027_deadline_is_provisional_until_the_2027_schedule_is_loaded(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar, tmp_path: Path
) -> None:
    case = a_query(cst(2026, 12, 21, 9), rules, real_calendar)
    assert case.deadline.provisional and case.deadline.last_working_day == date(2027, 1, 4)

    # Operator adds 2027 to the data file (test-only schedule: 1 January off).
    data = {"version": "2027-test", "years": {"2027": {"source": "test", "holidays": ["2027-01-01"], "makeup_workdays": []}}}
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    (updated,) = recompute_open_deadlines([case], load_calendar(path), now=cst(2026, 12, 28, 9))

    assert not updated.deadline.provisional
    assert updated.deadline.last_working_day == date(2027, 1, 5)
    assert updated.original_deadline.provisional  # the first computation is kept


def test_a_closed_month_recomputes_identically_after_a_later_calendar_update(rules: DeadlineRuleSet) -> None:
    month = ReportingMonth(2030, 3)
    case = a_query(cst(2030, 3, 6, 9), rules, V1)  # never answered; v1: due 24:00 Wed 20 Mar
    closed_at = cst(2030, 3, 21)  # closed at the cutoff, which is also the v1 deadline: overdue
    snapshot = close_month([case], month, closed_at)
    assert snapshot.as_dict()[REGISTRATION] == Counts(received=1, overdue=1)
    (moved,) = recompute_open_deadlines([case], V2, now=closed_at + timedelta(days=1))
    assert moved.deadline.last_working_day == date(2030, 3, 21)  # would be still open at the close today
    assert close_month([moved], month, closed_at) == snapshot
