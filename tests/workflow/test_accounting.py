from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.workflow.accounting import (
    CURRENT_RULES,
    RULES_DEADLINE,
    RULES_MIXED,
    RULES_SEEDS,
    Counts,
    Level,
    account,
    close_month,
    close_quarter,
    percent,
    roll_up,
    total,
)
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, record_feedback, withdraw
from gateway.workflow.deadlines import DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.feedback_handling import handle_feedback
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.strikes import StrikeLedger

from .builders import REGISTRATION, a_query
from .conftest import cst

APRIL = ReportingMonth(2026, 4)


def test_a_query_received_on_the_20th_and_answered_on_the_21st_counts_for_the_20th_s_month(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    case = a_query(cst(2026, 4, 20, 10), rules, real_calendar)
    answered = record_feedback(case, cst(2026, 4, 21, 9), FeedbackResult.FOUND)
    assert account([answered], APRIL, cst(2026, 4, 30))[REGISTRATION] == Counts(received=1, answered=1, on_time=1)
    assert account([answered], ReportingMonth(2026, 5), cst(2026, 5, 30)) == {}


def test_a_frozen_month_never_changes_and_a_reply_inside_its_deadline_after_the_close_counts_on_time_later(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    case = a_query(cst(2026, 4, 20, 10), rules, real_calendar)  # due in May, after the Labour Day holiday
    closed_at = cst(2026, 4, 21)  # say a month closed early (rules "3" never do: see test_finality)
    snapshot = close_month([case], APRIL, closed_at)
    answered = record_feedback(case, cst(2026, 4, 21, 9), FeedbackResult.FOUND)
    assert snapshot.as_dict()[REGISTRATION] == Counts(received=1, still_open=1)
    assert close_month([answered], APRIL, closed_at) == snapshot  # later answers never change the snapshot
    quarter = account([answered], Quarter(2026, 2), cst(2026, 6, 21), {APRIL: closed_at})
    assert quarter[REGISTRATION] == Counts(received=1, answered=1, on_time=1)


def test_snapshots_of_rules_1_and_2_keep_counting_a_reply_after_the_close_late(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    answered = record_feedback(a_query(cst(2026, 4, 20, 10), rules, real_calendar), cst(2026, 4, 21, 9), FeedbackResult.FOUND)
    closures = {APRIL: cst(2026, 4, 21)}
    for old in (RULES_MIXED, RULES_SEEDS):
        quarter = close_quarter([answered], Quarter(2026, 2), cst(2026, 6, 21), closures, old)
        assert quarter.as_dict()[REGISTRATION] == Counts(received=1, answered=1, late=1) and quarter.rules_version == old
    now = close_quarter([answered], Quarter(2026, 2), cst(2026, 6, 21), closures)
    assert now.rules_version == RULES_DEADLINE == CURRENT_RULES
    assert now.as_dict()[REGISTRATION] == Counts(received=1, answered=1, on_time=1)


def test_a_month_cannot_close_before_24_00_on_the_20th(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    with pytest.raises(ValueError, match="cutoff"):
        close_month([], APRIL, cst(2026, 4, 20, 23, 59))


def test_received_splits_into_on_time_late_overdue_and_still_open(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    q = [a_query(cst(2026, 3, 2, 9), rules, real_calendar) for _ in range(4)]  # due 24:00 16 Mar
    late_open = a_query(cst(2026, 3, 19, 9), rules, real_calendar)  # due 2 Apr
    cases = [
        record_feedback(q[0], cst(2026, 3, 10), FeedbackResult.FOUND),
        record_feedback(q[1], cst(2026, 3, 18), FeedbackResult.FOUND),
        record_feedback(q[2], cst(2026, 3, 11), FeedbackResult.NO_SUCH_PERSON, reason=NoSuchPersonReason.WRONG_NAME),
        q[3],
        late_open,
        withdraw(a_query(cst(2026, 3, 2, 9), rules, real_calendar), cst(2026, 3, 3)),
    ]
    c = account(cases, ReportingMonth(2026, 3), cst(2026, 3, 20, 12))[REGISTRATION]
    assert c == Counts(received=5, answered=3, on_time=2, late=1, overdue=1, still_open=1, no_such_person=1)
    assert c.received == c.on_time + c.late + c.overdue + c.still_open
    assert c.feedback_rate == Fraction(3, 5) and c.timely_rate == Fraction(2, 5)


def test_rates_roll_up_from_pooled_counts_not_averages_of_township_rates() -> None:
    rows = {
        "430521101": Counts(received=1, answered=1, on_time=1),
        "430521102": Counts(received=99, answered=0, overdue=99),
        "430522001": Counts(received=10, answered=5, on_time=5, overdue=5),
        "440106001": Counts(received=4, answered=4, on_time=2, late=2),
    }
    county = roll_up(rows, Level.COUNTY)
    assert county["430521"].feedback_rate == Fraction(1, 100)  # not (100% + 0%) / 2
    assert roll_up(rows, Level.CITY)["4305"] == Counts(received=110, answered=6, on_time=6, overdue=104)
    province = roll_up(rows, Level.PROVINCE)
    assert set(province) == {"43", "44"}
    assert province["44"].timely_rate == Fraction(1, 2)
    assert total(rows).received == 114


def test_a_township_that_received_nothing_has_no_rate() -> None:
    assert Counts().feedback_rate is None and Counts().timely_rate is None
    assert percent(Counts().feedback_rate) == "—"
    assert percent(Fraction(39, 40)) == "97.5%"


def test_missed_management_counts_in_the_month_of_the_third_query(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    ledger = StrikeLedger()
    cases: list[Case] = []
    for received in (cst(2026, 2, 2, 9), cst(2026, 3, 2, 9), cst(2026, 3, 25, 9)):
        outcome = handle_feedback(a_query(received, rules, real_calendar), ledger, received + timedelta(days=1),
                                  FeedbackResult.NO_SUCH_PERSON, reason=NoSuchPersonReason.WRONG_ID_NUMBER)
        ledger = outcome.ledger
        cases.append(outcome.case)
    as_of = cst(2026, 6, 1)
    assert account(cases, ReportingMonth(2026, 3), as_of)[REGISTRATION].missed_management == 0
    assert account(cases, APRIL, as_of)[REGISTRATION].missed_management == 1
    assert account(cases, Quarter(2026, 1), as_of)[REGISTRATION] == Counts(received=2, answered=2, on_time=2, no_such_person=2)


def test_a_closed_quarter_recomputes_identically_from_its_stored_inputs(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    q1 = Quarter(2026, 1)
    closures = {m: m.ends_at + timedelta(days=3) for m in q1.months}
    a = a_query(cst(2026, 1, 5, 9), rules, real_calendar)
    b = a_query(cst(2026, 3, 18, 9), rules, real_calendar)
    c = record_feedback(a_query(cst(2026, 2, 2, 9), rules, real_calendar), cst(2026, 2, 5), FeedbackResult.FOUND)
    closed_at = cst(2026, 3, 31)
    first = close_quarter([a, b, c], q1, closed_at, closures)
    # Later: b is answered after the close; recomputing the closed quarter gives the same result.
    b_answered = record_feedback(b, cst(2026, 4, 1), FeedbackResult.FOUND)
    again = close_quarter([c, b_answered, a], q1, closed_at, closures)
    assert again == first
    assert first.as_dict()[REGISTRATION] == Counts(received=3, answered=1, on_time=1, overdue=1, still_open=1)
    assert len(first.inputs_digest) == 64


def test_a_different_closing_instant_gives_a_different_digest(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    a = a_query(cst(2026, 1, 5, 9), rules, real_calendar)
    q1 = Quarter(2026, 1)
    assert close_quarter([a], q1, cst(2026, 3, 31), {}).inputs_digest != close_quarter([a], q1, cst(2026, 4, 1), {}).inputs_digest


counts_st = st.builds(
    lambda on_time, late, overdue, still_open: Counts(on_time + late + overdue + still_open, on_time + late, on_time, late, overdue, still_open),
    *(st.integers(0, 50) for _ in range(4)),
)


@settings(max_examples=100)
@given(st.dictionaries(st.from_regex(r"\A[1-6][0-9]{8}\Z"), counts_st, max_size=12))
def test_roll_up_preserves_totals_at_every_level(rows: dict[str, Counts]) -> None:
    for level in Level:
        assert total(roll_up(rows, level)) == total(rows)
