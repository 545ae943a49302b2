from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import CaseState, CaseTransitionError, evaluate, record_feedback, withdraw
from gateway.workflow.deadlines import DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.periods import ReportingMonth

from .builders import a_query
from .conftest import FakeClock, cst


def test_a_new_query_awaits_a_reply_and_records_its_receipt(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = a_query(cst(2026, 3, 2, 9), rules, real_calendar)
    assert case.state is CaseState.AWAITING_REPLY
    assert case.is_open and case.reporting_month == ReportingMonth(2026, 3)
    assert [(t.to_state, t.at) for t in case.history] == [(CaseState.AWAITING_REPLY, cst(2026, 3, 2, 9))]
    assert case.original_deadline == case.deadline


def test_time_moves_a_query_to_due_soon_then_overdue_stamped_when_each_rule_took_effect(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar, clock: FakeClock
) -> None:
    case = a_query(clock.now, rules, real_calendar)  # Mon 2 Mar 2026: due 24:00 Mon 16 Mar
    assert evaluate(case, clock.set(cst(2026, 3, 12, 23))).state is CaseState.AWAITING_REPLY
    case = evaluate(case, clock.set(cst(2026, 3, 13, 8)))  # window: last 2 working days = Fri 13, Mon 16
    assert case.state is CaseState.DUE_SOON and case.history[-1].at == cst(2026, 3, 13)
    case = evaluate(case, clock.set(cst(2026, 3, 18, 10)))
    assert case.state is CaseState.OVERDUE and case.history[-1].at == cst(2026, 3, 17)
    assert evaluate(case, clock.advance(days=3)) == case  # idempotent


def test_evaluating_late_jumps_straight_to_overdue_with_one_transition(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = evaluate(a_query(cst(2026, 3, 2, 9), rules, real_calendar), cst(2026, 4, 1))
    assert [t.to_state for t in case.history] == [CaseState.AWAITING_REPLY, CaseState.OVERDUE]


def test_a_found_reply_before_2400_of_the_last_working_day_is_on_time(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = a_query(cst(2026, 3, 2, 9), rules, real_calendar)
    answered = record_feedback(case, cst(2026, 3, 16, 23, 59, 59, 999999), FeedbackResult.FOUND, message_id="f-1")
    assert answered.state is CaseState.ANSWERED_ON_TIME
    assert answered.feedback is not None and answered.feedback.on_time and answered.feedback.message_id == "f-1"


def test_a_reply_at_exactly_0000_after_the_last_working_day_is_late(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = a_query(cst(2026, 3, 2, 9), rules, real_calendar)
    answered = record_feedback(case, cst(2026, 3, 17), FeedbackResult.FOUND)
    assert answered.state is CaseState.ANSWERED_LATE
    assert answered.feedback is not None and answered.feedback.late_because == "after the deadline"


def test_a_reply_after_the_20th_within_its_working_days_is_on_time(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    # Seed 000 工作制度 二/七, seed 002 范文篇9 五(三): the 20th closes submissions, not the replies due after it.
    case = a_query(cst(2026, 7, 17, 10), rules, real_calendar)  # Fri 17 Jul: reporting month 2026-07, due 31 Jul
    assert case.deadline.last_working_day.isoformat() == "2026-07-31"
    answered = record_feedback(case, cst(2026, 7, 22, 10), FeedbackResult.FOUND)  # Wed 22 Jul, after the 20th
    assert answered.state is CaseState.ANSWERED_ON_TIME
    assert answered.feedback is not None and answered.feedback.on_time and answered.feedback.late_because is None
    assert answered.reporting_month == ReportingMonth(2026, 7)


def test_a_query_received_on_the_20th_answered_on_the_21st_is_on_time_for_its_own_month(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    case = a_query(cst(2026, 4, 20, 10), rules, real_calendar)
    answered = record_feedback(case, cst(2026, 4, 21, 9), FeedbackResult.FOUND)
    assert answered.state is CaseState.ANSWERED_ON_TIME
    assert answered.reporting_month == ReportingMonth(2026, 4)


def test_a_query_of_30_september_2025_is_due_after_the_national_day_holiday_and_counts_in_october(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # 1-8 Oct 2025 are holidays and Sat 11 Oct a make-up working day: 10 working days end on Tue 21 Oct.
    case = a_query(cst(2025, 9, 30, 16), rules, real_calendar)
    assert case.reporting_month == ReportingMonth(2025, 10)  # after the 20th of September
    assert case.deadline.last_working_day.isoformat() == "2025-10-21"
    on_time = record_feedback(case, cst(2025, 10, 21, 23, 59), FeedbackResult.FOUND)  # after October's 20th
    assert on_time.state is CaseState.ANSWERED_ON_TIME
    assert record_feedback(case, cst(2025, 10, 22), FeedbackResult.FOUND).state is CaseState.ANSWERED_LATE


def test_no_such_person_needs_a_reason_and_other_needs_remarks(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = a_query(cst(2026, 3, 2, 9), rules, real_calendar)
    with pytest.raises(ValueError, match="reason"):
        record_feedback(case, cst(2026, 3, 3), FeedbackResult.NO_SUCH_PERSON)
    with pytest.raises(ValueError, match="remarks"):
        record_feedback(case, cst(2026, 3, 3), FeedbackResult.NO_SUCH_PERSON, reason=NoSuchPersonReason.OTHER)
    answered = record_feedback(case, cst(2026, 3, 3), FeedbackResult.NO_SUCH_PERSON, reason=NoSuchPersonReason.WRONG_ADDRESS)
    assert answered.state is CaseState.NO_SUCH_PERSON


def test_a_second_reply_to_the_same_query_is_refused(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    answered = record_feedback(a_query(cst(2026, 3, 2, 9), rules, real_calendar), cst(2026, 3, 3), FeedbackResult.FOUND)
    with pytest.raises(CaseTransitionError):
        record_feedback(answered, cst(2026, 3, 4), FeedbackResult.FOUND)


def test_a_reply_before_the_query_is_refused(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = a_query(cst(2026, 3, 2, 9), rules, real_calendar)
    with pytest.raises(ValueError):
        record_feedback(case, cst(2026, 3, 2, 9) - timedelta(seconds=1), FeedbackResult.FOUND)


def test_withdrawn_queries_take_no_reply_and_closed_ones_cannot_be_withdrawn(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    case = a_query(cst(2026, 3, 2, 9), rules, real_calendar)
    gone = withdraw(case, cst(2026, 3, 3))
    assert gone.state is CaseState.WITHDRAWN and gone.withdrawn_at == cst(2026, 3, 3)
    with pytest.raises(CaseTransitionError):
        record_feedback(gone, cst(2026, 3, 4), FeedbackResult.FOUND)
    with pytest.raises(CaseTransitionError):
        withdraw(record_feedback(case, cst(2026, 3, 4), FeedbackResult.FOUND), cst(2026, 3, 5))


def test_closed_cases_are_not_moved_by_evaluation(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    answered = record_feedback(a_query(cst(2026, 3, 2, 9), rules, real_calendar), cst(2026, 3, 3), FeedbackResult.FOUND)
    assert evaluate(answered, cst(2027, 1, 1)) is answered


def test_township_codes_must_have_nine_digits(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    with pytest.raises(ValueError, match="9-digit"):
        a_query(cst(2026, 3, 2, 9), rules, real_calendar, registration="430521")
