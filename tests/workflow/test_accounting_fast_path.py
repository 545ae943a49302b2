"""Closing a period counts in one fast pass; it must freeze exactly what the plain rules give.

The reference below is the closing code as first written: `account` for the counts, `_digest` for
the digest, each case's deadline in force for the calendar versions. Generated quarters mix every
outcome: on time, late, late because the month had closed, 查无此人, 漏管, withdrawn, overdue,
still open, deadlines moved by a calendar update, and facts that happen after the closing instant.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from gateway.workflow.accounting import (
    CURRENT_RULES,
    RULES_MIXED,
    RULES_SEEDS,
    RULES_VERSIONS,
    AccountingSnapshot,
    ClosingAt,
    Period,
    _digest,
    _months,
    account,
    close_month,
    close_quarter,
    count_as_of,
)
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, evaluate, open_case, recompute_open_deadlines, withdraw
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.feedback_handling import handle_feedback
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.strikes import StrikeLedger

from .conftest import cst

Q1 = Quarter(2026, 1)
TOWNSHIPS = ("430521101", "430521102", "430602001", "431102003")
RESIDENCES = ("440106001", "330102001")


def reference_snapshot(
    cases: list[Case], period: Period, closed_at: datetime, closures: dict, rules_version: str = CURRENT_RULES
) -> AccountingSnapshot:
    months = set(_months(period))
    relevant = [c for c in cases if c.reporting_month in months and c.received_at <= closed_at]
    return AccountingSnapshot(
        period=str(period),
        closed_at=closed_at,
        rows=tuple(sorted(account(relevant, period, closed_at, closures, rules_version).items())),
        inputs_digest=_digest(relevant, period, closed_at, closures, rules_version),
        calendar_versions=tuple(sorted({c.deadline_as_of(closed_at).calendar_version for c in relevant})),
        rules_version=rules_version,
    )


RULES = pytest.mark.parametrize("rules_version", RULES_VERSIONS)


def later_calendar(calendar: WorkingDayCalendar) -> WorkingDayCalendar:
    """The same calendar with two extra holidays in March 2026, as a corrected notice would add."""
    year = calendar.schedules[2026]
    extra = replace(year, holidays=year.holidays | {datetime(2026, 3, 9).date(), datetime(2026, 3, 10).date()})
    return WorkingDayCalendar({**calendar.schedules, 2026: extra}, calendar.version + "+fix")


def generated_quarter(seed: int, rules: DeadlineRuleSet, calendar: WorkingDayCalendar) -> list[Case]:
    rng = random.Random(seed)
    start = cst(2025, 12, 14)  # a week before the quarter, to have cases of another month too
    cases: list[Case] = []
    for i in range(600):
        received = start + timedelta(hours=rng.uniform(0, 24 * 105))
        kind = rng.choice(list(CaseKind))
        person = f"4305211990010{i % 40:04d}X"  # repeated people: some keys collect strikes
        cases.append(open_case(f"c{seed}-{i:04d}", kind, rng.choice(RESIDENCES), rng.choice(TOWNSHIPS), person,
                               received, rules, calendar))
    # A calendar update on 5 March moves the deadlines of the cases open then.
    update_at = cst(2026, 3, 5, 12)
    moved = recompute_open_deadlines([c for c in cases if c.received_at <= update_at and rng.random() < 0.5],
                                     later_calendar(calendar), update_at)
    by_id = {c.case_id: c for c in cases} | {c.case_id: c for c in moved}
    ledger = StrikeLedger()
    month_closed = {m: m.ends_at + timedelta(minutes=5) for m in Q1.months}
    answered: list[Case] = []
    for case in sorted(by_id.values(), key=lambda c: c.received_at):
        p = rng.random()
        if p < 0.05:
            answered.append(withdraw(case, case.received_at + timedelta(hours=rng.uniform(1, 200))))
            continue
        if p < 0.12:
            answered.append(evaluate(case, cst(2026, 3, 25)))  # never answered
            continue
        at = case.received_at + timedelta(days=rng.uniform(0.1, 25))
        if rng.random() < 0.1:  # the boundaries, both late: exactly 24:00 of the last working day, exactly the close
            at = rng.choice([case.deadline.due_at, month_closed.get(case.reporting_month, case.deadline.due_at)])
        result = FeedbackResult.NO_SUCH_PERSON if rng.random() < 0.35 else FeedbackResult.FOUND
        reason = NoSuchPersonReason.WRONG_ADDRESS if result is FeedbackResult.NO_SUCH_PERSON else None
        outcome = handle_feedback(evaluate(case, at), ledger, at, result, reason=reason)
        ledger = outcome.ledger
        answered.append(outcome.case)
    return answered


@RULES
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_closing_a_month_freezes_what_the_plain_rules_count(
    seed: int, rules_version: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    cases = generated_quarter(seed, rules, real_calendar)
    for month in (*Q1.months, ReportingMonth(2026, 4)):
        for closed_at in (month.ends_at, month.ends_at + timedelta(days=9, hours=3)):
            assert close_month(cases, month, closed_at, rules_version) == reference_snapshot(
                cases, month, closed_at, {month: closed_at}, rules_version)


@RULES
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_closing_a_quarter_freezes_what_the_plain_rules_count(
    seed: int, rules_version: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    cases = generated_quarter(seed, rules, real_calendar)
    closed_at = Q1.ends_at + timedelta(minutes=5)
    on_time = {m: m.ends_at + timedelta(minutes=5) for m in Q1.months}
    for closures in ({}, on_time, {Q1.months[0]: on_time[Q1.months[0]]}):
        expected = reference_snapshot(cases, Q1, closed_at, {m: closures.get(m, closed_at) for m in Q1.months}, rules_version)
        assert close_quarter(cases, Q1, closed_at, closures, rules_version) == expected


@pytest.mark.parametrize("seed", [1, 2])
def test_a_quarter_closed_in_the_tick_of_its_months_reuses_their_counts_and_freezes_the_same(
    seed: int, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    cases = generated_quarter(seed, rules, real_calendar)
    # After an outage: the three months and the quarter in one tick.
    late_tick = Q1.ends_at + timedelta(days=3)
    closing = ClosingAt(late_tick)
    months = [closing.month(cases, m) for m in Q1.months]
    assert months == [close_month(cases, m, late_tick) for m in Q1.months]
    assert closing.quarter(cases, Q1, {m: late_tick for m in Q1.months}) == reference_snapshot(
        cases, Q1, late_tick, {m: late_tick for m in Q1.months})
    # On time: the first two months closed in earlier ticks, the last one with the quarter.
    tick = Q1.ends_at + timedelta(minutes=5)
    closures = {m: m.ends_at + timedelta(minutes=5) for m in Q1.months}
    closing = ClosingAt(tick)
    closing.month(cases, Q1.months[-1])
    assert closing.quarter(cases, Q1, closures) == reference_snapshot(cases, Q1, tick, closures)


def test_the_generated_quarters_exercise_every_outcome(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    cases = [c for seed in (1, 2, 3) for c in generated_quarter(seed, rules, real_calendar)]
    totals = close_quarter(cases, Q1, Q1.ends_at, {m: m.ends_at for m in Q1.months}).rows
    summed = {field: sum(getattr(counts, field) for _, counts in totals) for field in
              ("on_time", "late", "overdue", "still_open", "no_such_person", "missed_management")}
    assert all(summed.values()), summed
    assert any(c.deadline_changes for c in cases) and any(c.withdrawn_at for c in cases)


@RULES
@pytest.mark.parametrize("seed", [1, 2])
def test_counting_a_quarter_in_progress_gives_what_the_plain_rules_count(
    seed: int, rules_version: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    cases = generated_quarter(seed, rules, real_calendar)
    closures = {Q1.months[0]: Q1.months[0].ends_at + timedelta(minutes=5)}
    for as_of in (cst(2026, 1, 10), cst(2026, 2, 25, 12), cst(2026, 3, 19, 23, 59)):
        assert count_as_of(cases, Q1, as_of, closures, rules_version) == account(cases, Q1, as_of, closures, rules_version)


def test_rule_13_counts_notifications_apart_and_the_old_rules_counted_them_among_the_queries(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Rule 十三: 反馈…的比率,必须是查询信息总数的100% — the denominator is the queries received.
    cases = generated_quarter(1, rules, real_calendar)
    closed_at = Q1.ends_at + timedelta(minutes=5)
    seeds = dict(close_quarter(cases, Q1, closed_at, {}, RULES_SEEDS).rows)
    mixed = dict(close_quarter(cases, Q1, closed_at, {}, RULES_MIXED).rows)
    assert seeds.keys() == mixed.keys()
    for township, new in seeds.items():
        old = mixed[township]
        assert new.notifications_received and not old.notifications_received
        assert old.received == new.received + new.notifications_received
        assert old.answered == new.answered + new.notifications_answered
        assert old.on_time == new.on_time + new.notifications_on_time
        assert old.overdue + old.still_open == new.overdue + new.still_open + new.notifications_overdue + new.notifications_open
    queries = [c for c in cases if c.kind is not CaseKind.NOTIFICATION and c.reporting_month in Q1.months]
    counted = [c for c in queries if c.feedback or not c.withdrawn_at or c.withdrawn_at > closed_at]
    assert sum(c.received for c in seeds.values()) == len(counted)


def test_a_quarter_closed_before_rule_13_was_applied_recomputes_by_the_rules_it_was_closed_with(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Closed snapshots stay reproducible: one stored before snapshots recorded their rules reads as version 1.
    import json

    from gateway.tracking.serialization import SNAPSHOT

    cases = generated_quarter(2, rules, real_calendar)
    closed_at = Q1.ends_at + timedelta(minutes=5)
    old = close_quarter(cases, Q1, closed_at, {}, RULES_MIXED)
    doc = json.loads(SNAPSHOT.dump_json(old))
    del doc["rules_version"]
    for _, counts in doc["rows"]:
        for name in [n for n in counts if n.startswith("notifications_")]:
            del counts[name]
    stored = SNAPSHOT.validate_json(json.dumps(doc))
    assert stored.rules_version == RULES_MIXED
    assert close_quarter(cases, Q1, closed_at, {}, stored.rules_version) == stored
    assert close_quarter(cases, Q1, closed_at, {}) != stored  # the current rules count otherwise
