from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet, compute_deadline, deadline_for
from gateway.workflow.instants import SHANGHAI

from .conftest import cst


def due_cst(kind: CaseKind, received: datetime, rules: DeadlineRuleSet, calendar: WorkingDayCalendar) -> str:
    return deadline_for(kind, received, rules, calendar).due_at.astimezone(SHANGHAI).isoformat()


def test_query_is_due_at_2400_of_the_tenth_working_day(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    d = deadline_for(CaseKind.QUERY, cst(2026, 1, 20, 10), rules, real_calendar)
    assert d.last_working_day == date(2026, 2, 3)
    assert d.due_at == cst(2026, 2, 4) and d.due_at.tzinfo == timezone.utc
    assert not d.provisional and d.working_days == 10 and d.calendar_version == real_calendar.version


def test_query_received_before_spring_festival_2026_skips_the_holiday_and_counts_make_up_saturdays(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Fri 13 Feb: Sat 14 (调休) is 1; 15-23 off; 24-27 are 2-5; Sat 28 (调休) is 6; 2-5 Mar are 7-10.
    assert due_cst(CaseKind.QUERY, cst(2026, 2, 13, 16), rules, real_calendar) == "2026-03-06T00:00:00+08:00"


def test_notification_received_on_a_make_up_saturday_does_not_count_that_day(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Sat 14 Feb 2026 is a working day, but the day of receipt is never counted: 24-27 Feb, Sat 28 Feb.
    assert due_cst(CaseKind.NOTIFICATION, cst(2026, 2, 14, 11), rules, real_calendar) == "2026-03-01T00:00:00+08:00"


def test_birth_query_received_during_the_spring_festival_holiday(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    assert due_cst(CaseKind.BIRTH_QUERY, cst(2026, 2, 18, 9), rules, real_calendar) == "2026-03-01T00:00:00+08:00"


def test_query_received_on_a_sunday(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    assert due_cst(CaseKind.QUERY, cst(2026, 3, 1, 20), rules, real_calendar) == "2026-03-14T00:00:00+08:00"


def test_query_received_the_day_before_national_day_2026(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    # 1-7 Oct off; 8, 9 Oct, Sat 10 Oct (调休), 12-16, 19, 20 Oct.
    assert due_cst(CaseKind.QUERY, cst(2026, 9, 30, 15), rules, real_calendar) == "2026-10-21T00:00:00+08:00"


def test_notification_received_on_a_saturday_counts_the_make_up_sunday(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    # Sun 20 Sep 2026 (调休) is 1, 21-24 Sep are 2-5 (Fri 25 Sep is Mid-autumn).
    assert due_cst(CaseKind.NOTIFICATION, cst(2026, 9, 19, 10), rules, real_calendar) == "2026-09-25T00:00:00+08:00"


def test_notification_received_on_the_make_up_sunday_before_mid_autumn(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    assert due_cst(CaseKind.NOTIFICATION, cst(2026, 9, 20, 10), rules, real_calendar) == "2026-09-29T00:00:00+08:00"


def test_the_day_of_receipt_is_the_cst_date_not_the_utc_date(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    # 2026-03-01T17:00Z is Monday 2 March 01:00 CST: counting starts on Tuesday 3 March.
    received = datetime(2026, 3, 1, 17, tzinfo=timezone.utc)
    assert deadline_for(CaseKind.BIRTH_QUERY, received, rules, real_calendar).last_working_day == date(2026, 3, 9)


def test_deadline_reaching_2027_is_provisional(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    d = deadline_for(CaseKind.QUERY, cst(2026, 12, 21, 9), rules, real_calendar)
    assert d.provisional
    assert d.last_working_day == date(2027, 1, 4)  # Mon-Fri fallback: 1 Jan 2027 counted as working


def test_province_override_applies_to_the_replying_township(real_calendar: WorkingDayCalendar) -> None:
    rules = DeadlineRuleSet("t", {CaseKind.QUERY: 10, CaseKind.BIRTH_QUERY: 5, CaseKind.NOTIFICATION: 5}, 2, {"44": {CaseKind.QUERY: 7}})
    received = cst(2026, 3, 2, 9)
    assert deadline_for(CaseKind.QUERY, received, rules, real_calendar, "440106001").working_days == 7
    assert deadline_for(CaseKind.QUERY, received, rules, real_calendar, "110101001").working_days == 10
    assert deadline_for(CaseKind.NOTIFICATION, received, rules, real_calendar, "440106001").working_days == 5


def test_rule_set_without_a_kind_or_with_zero_days_is_refused() -> None:
    with pytest.raises(ValueError):
        DeadlineRuleSet("t", {CaseKind.QUERY: 10}, 2)
    with pytest.raises(ValueError):
        DeadlineRuleSet("t", {CaseKind.QUERY: 0, CaseKind.BIRTH_QUERY: 5, CaseKind.NOTIFICATION: 5}, 2)


def test_naive_instants_are_refused(real_calendar: WorkingDayCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_deadline(datetime(2026, 3, 2, 9), 10, real_calendar)


instants = st.datetimes(min_value=datetime(2004, 1, 2), max_value=datetime(2028, 6, 1), timezones=st.just(timezone.utc))


@settings(max_examples=150, deadline=None)
@given(received=instants, n1=st.integers(1, 30), extra=st.integers(0, 30))
def test_deadlines_are_monotone_in_the_number_of_working_days(
    received: datetime, n1: int, extra: int, real_calendar: WorkingDayCalendar
) -> None:
    assert compute_deadline(received, n1, real_calendar).due_at <= compute_deadline(received, n1 + extra, real_calendar).due_at


@settings(max_examples=150, deadline=None)
@given(received=instants, n=st.integers(1, 30))
def test_a_deadline_is_always_the_end_of_a_working_day_n_working_days_after_receipt(
    received: datetime, n: int, real_calendar: WorkingDayCalendar
) -> None:
    d = compute_deadline(received, n, real_calendar)
    local = d.due_at.astimezone(SHANGHAI)
    assert local.time() == time(0)
    last = local.date() - timedelta(days=1)
    assert last == d.last_working_day and real_calendar.is_working_day(last)
    receipt_day = received.astimezone(SHANGHAI).date()
    counted = sum(real_calendar.is_working_day(receipt_day + timedelta(days=i)) for i in range(1, (last - receipt_day).days + 1))
    assert counted == n


@settings(max_examples=100, deadline=None)
@given(received=instants, n=st.integers(1, 30))
def test_deadlines_are_provisional_exactly_when_they_reach_an_unpublished_year(
    received: datetime, n: int, real_calendar: WorkingDayCalendar
) -> None:
    d = compute_deadline(received, n, real_calendar)
    assert d.provisional == (d.last_working_day.year >= 2027)
