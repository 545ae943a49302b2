"""`Case.next_change_at`: nothing changes a case by time alone before it, something does at it.

The tick reads only the cases whose instant has come, so an instant too late would be a missed
reminder or a case never marked overdue; this is checked over generated cases and times.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, evaluate, mark_reminder_sent, open_case, record_feedback
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.reminders import reminders_due

from .conftest import cst

START = cst(2026, 1, 1)


def tick(case: Case, now: datetime) -> Case:
    """What the tracker's tick does to one case."""
    case = evaluate(case, now)
    for reminder in reminders_due([case], now):
        case = mark_reminder_sent(case, reminder.kind.value)
    return case


def changes_at(case: Case, instant: datetime) -> bool:
    return evaluate(case, instant) != case or reminders_due([case], instant) != []


minutes = st.integers(min_value=0, max_value=60 * 24 * 40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    received=st.integers(min_value=0, max_value=60 * 24 * 330),
    kind=st.sampled_from(list(CaseKind)),
    ticks=st.lists(minutes, max_size=3),
    probes=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=1, max_size=5),
)
def test_time_changes_nothing_before_a_case_s_next_change_and_something_at_it(
    received: int, kind: CaseKind, ticks: list[int], probes: list[float],
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar,
) -> None:
    received_at = START + timedelta(minutes=received)
    case = evaluate(open_case("q", kind, "440106001", "430181001", "430181199001010011", received_at, rules,
                              real_calendar), received_at)
    last = received_at
    for offset in sorted(ticks):
        last = received_at + timedelta(minutes=offset)
        case = tick(case, last)

    nxt = case.next_change_at
    if nxt is None:
        assert not changes_at(case, last + timedelta(days=400))
        return
    assert nxt > last or changes_at(case, last)
    for fraction in probes:
        probe = last + (nxt - last) * fraction
        if probe < nxt:
            assert not changes_at(case, probe), (probe, nxt)
    assert changes_at(case, max(nxt, last))


def test_a_closed_case_has_no_next_change(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = open_case("q", CaseKind.QUERY, "440106001", "430181001", "430181199001010011", cst(2026, 3, 2, 9), rules,
                     real_calendar)
    assert case.next_change_at == case.due_soon.starts_at
    assert record_feedback(case, cst(2026, 3, 3), FeedbackResult.FOUND).next_change_at is None


def test_an_overdue_case_whose_reminder_went_out_waits_for_nothing(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = open_case("q", CaseKind.QUERY, "440106001", "430181001", "430181199001010011", cst(2026, 3, 2, 9), rules,
                     real_calendar)
    overdue = tick(case, case.deadline.due_at)
    assert overdue.next_change_at is None
