from __future__ import annotations

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import mark_reminder_sent, record_feedback
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.reminders import ReminderKind, reminders_due

from .builders import REGISTRATION, a_query
from .conftest import FakeClock, cst


def test_due_soon_then_overdue_each_sent_once_to_the_replying_township(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar, clock: FakeClock
) -> None:
    case = a_query(clock.now, rules, real_calendar)  # due 24:00 Mon 16 Mar 2026; warning from Fri 13 Mar
    assert reminders_due([case], clock.set(cst(2026, 3, 12, 23, 59))) == []

    (notice,) = reminders_due([case], clock.set(cst(2026, 3, 13, 9)))
    assert notice.kind is ReminderKind.DUE_SOON and notice.township == REGISTRATION and notice.case_id == case.case_id
    case = mark_reminder_sent(case, notice.kind)
    assert reminders_due([case], clock.advance(hours=5)) == []

    (notice,) = reminders_due([case], clock.set(cst(2026, 3, 17)))
    assert notice.kind is ReminderKind.OVERDUE
    case = mark_reminder_sent(case, notice.kind)
    assert reminders_due([case], clock.advance(days=10)) == []


def test_a_case_first_seen_overdue_gets_only_the_overdue_notice(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = a_query(cst(2026, 3, 2, 9), rules, real_calendar)
    assert [r.kind for r in reminders_due([case], cst(2026, 3, 20))] == [ReminderKind.OVERDUE]


def test_answered_cases_get_no_reminders(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = record_feedback(a_query(cst(2026, 3, 2, 9), rules, real_calendar), cst(2026, 3, 3), FeedbackResult.FOUND)
    assert reminders_due([case], cst(2026, 3, 20)) == []


def test_the_due_soon_window_counts_working_days_across_the_spring_festival(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    # Received Tue 10 Feb, 5 working days: 11, 12, 13, Sat 14 (调休), Tue 24 Feb. The last two are 14 and 24 Feb.
    case = a_query(cst(2026, 2, 10, 9), rules, real_calendar, kind=CaseKind.BIRTH_QUERY)
    assert case.deadline.due_at == cst(2026, 2, 25)
    assert case.due_soon.starts_at == cst(2026, 2, 14)
    assert [r.kind for r in reminders_due([case], cst(2026, 2, 14, 8))] == [ReminderKind.DUE_SOON]
