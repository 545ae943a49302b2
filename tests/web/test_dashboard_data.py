"""The dashboard's figures are the accounting rules' figures: the same counts as `accounting.account` on
the same cases, for open periods (live, from the tallies the database keeps, with the closures of closed
months) and closed ones (the frozen snapshot), scoped to a region by division code; on SQLite and
PostgreSQL. (tests/web/test_dashboard_tallies.py drives the tallies through a quarter of changes.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.tally_store import TallyStore
from gateway.web.dashboard_data import DashboardReader, parse_period
from gateway.workflow.accounting import Counts, account, close_month
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import evaluate, record_feedback
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.periods import Quarter, ReportingMonth

from ..workflow.builders import a_query
from ..workflow.conftest import cst
from ..workflow.test_accounting_fast_path import Q1, generated_quarter

pytestmark = pytest.mark.database

JANUARY, FEBRUARY, MARCH = Q1.months
# After every fact of the generated quarters: the gateway's clock is never behind the facts it stored.
NOW = cst(2026, 5, 1, 10)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[object]:
    engine = create_engine(database_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


async def stored(engine: object, rules: DeadlineRuleSet, calendar: WorkingDayCalendar) -> tuple[SqlCaseStore, list]:
    store = SqlCaseStore(engine)  # type: ignore[arg-type]
    cases = generated_quarter(1, rules, calendar) + generated_quarter(2, rules, calendar)
    await store.add_cases(cases)
    return store, cases


def within(rows: dict[str, Counts], prefix: str) -> dict[str, Counts]:
    return {t: c for t, c in rows.items() if t.startswith(prefix)}


async def test_an_open_period_counts_as_the_accounting_rules_count_it_live(
    engine: object, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    store, cases = await stored(engine, rules, real_calendar)
    january_closed = JANUARY.ends_at + timedelta(minutes=5)
    await store.close_month(close_month(cases, JANUARY, january_closed))
    reader = DashboardReader(engine, real_calendar)  # type: ignore[arg-type]
    closures = {JANUARY: january_closed}
    # Read from the log of changes alone, then from the tallies it was folded into.
    for folded in (False, True):
        if folded:
            assert await TallyStore(engine).fold(NOW) > 0  # type: ignore[arg-type]
        for period in (MARCH, FEBRUARY, Q1):
            expected = account(cases, period, NOW, closures)
            assert sum(expected.values(), Counts()).received > 100
            for prefix in ("43", "4305", "430521", "430521101"):
                assert await reader.township_counts(prefix, period, NOW) == within(expected, prefix), (period, prefix)


async def test_a_closed_period_shows_its_frozen_snapshot_not_later_replies(
    engine: object, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    store, cases = await stored(engine, rules, real_calendar)
    closed_at = JANUARY.ends_at + timedelta(minutes=5)
    snapshot = close_month(cases, JANUARY, closed_at)
    await store.close_month(snapshot)
    reader = DashboardReader(engine, real_calendar)  # type: ignore[arg-type]
    frozen = await reader.township_counts("4305", JANUARY, NOW)
    assert frozen == within(snapshot.as_dict(), "4305")
    assert frozen != within(account(cases, JANUARY, NOW), "4305")  # replies after the close changed the live figures


async def test_the_trend_gives_each_month_its_figures_and_nothing_for_months_without_cases(
    engine: object, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    _, cases = await stored(engine, rules, real_calendar)
    reader = DashboardReader(engine, real_calendar)  # type: ignore[arg-type]
    trend = await reader.trend("43", MARCH, NOW)
    assert [str(m) for m, _ in trend][-3:] == ["2026-01", "2026-02", "2026-03"] and len(trend) == 12
    by_month = dict(trend)
    for month in (JANUARY, FEBRUARY, MARCH):
        assert by_month[month] == sum(account(cases, month, NOW).values(), Counts())
    assert by_month[ReportingMonth(2025, 6)] == Counts() and by_month[ReportingMonth(2025, 6)].feedback_rate is None


async def test_the_overdue_list_holds_the_regions_unanswered_cases_past_due_oldest_first(
    engine: object, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    _, cases = await stored(engine, rules, real_calendar)
    later = cst(2026, 5, 1)  # after every fact of the generated quarter, as the gateway's own clock always is
    reader = DashboardReader(engine, real_calendar)  # type: ignore[arg-type]
    rows, total = await reader.overdue("430521", Q1, later, limit=5)
    expected = sorted(
        (c for c in cases if c.registration_township.startswith("430521") and c.reporting_month in Q1.months
         and c.feedback is None and c.withdrawn_at is None and c.deadline.due_at <= later),
        key=lambda c: (c.deadline.due_at, c.case_id))
    assert total == len(expected) > 5
    assert [r.case_id for r in rows] == [c.case_id for c in expected[:5]]
    assert all(r.working_days_overdue >= 1 for r in rows)


def test_working_days_overdue_count_from_the_day_after_the_deadline(real_calendar: WorkingDayCalendar) -> None:
    reader = DashboardReader(None, real_calendar)  # type: ignore[arg-type]
    due = cst(2026, 3, 5)  # 24:00 on Wednesday 4 March
    assert reader.working_days_between(due, cst(2026, 3, 5, 9)) == 1  # Thursday
    assert reader.working_days_between(due, cst(2026, 3, 9, 9)) == 3  # Thu, Fri, Mon (not the weekend)
    assert reader.working_days_between(due, cst(2026, 3, 4, 23)) == 0


def test_a_period_is_a_month_or_a_quarter() -> None:
    assert parse_period("2026-11") == ReportingMonth(2026, 11)
    assert parse_period("2026Q4") == Quarter(2026, 4)
    with pytest.raises(ValueError):
        parse_period("2026-13")


async def test_a_reply_shows_on_the_next_page_and_a_deadline_passing_shows_without_any_write(
    engine: object, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    store = SqlCaseStore(engine)  # type: ignore[arg-type]
    received = cst(2026, 3, 2, 9)  # Monday: due by 24:00 on Monday 16 March (10 working days)
    first, second = (evaluate(a_query(received, rules, real_calendar, case_id=i), received) for i in ("q-1", "q-2"))
    notification = evaluate(a_query(received, rules, real_calendar, case_id="n-1", kind=CaseKind.NOTIFICATION), received)
    await store.add_cases([first, second, notification])
    reader = DashboardReader(engine, real_calendar)  # type: ignore[arg-type]

    async def page(now: object) -> Counts:
        return sum((await reader.township_counts("43", MARCH, now)).values(), Counts())  # type: ignore[arg-type]

    assert await page(cst(2026, 3, 3)) == Counts(received=2, still_open=2, notifications_received=1, notifications_open=1)
    answered_at = cst(2026, 3, 4, 10)
    assert await store.save_answer(record_feedback(evaluate(first, answered_at), answered_at, FeedbackResult.FOUND), None)
    # Not folded yet: the page counts the logged change itself.
    expected = Counts(received=2, answered=1, on_time=1, still_open=1, notifications_received=1, notifications_open=1)
    assert await page(cst(2026, 3, 4, 11)) == expected
    assert await TallyStore(engine).fold(cst(2026, 3, 4, 11)) == 3 + 2  # three opened, one answer: −old, +new
    assert await page(cst(2026, 3, 4, 11)) == expected
    # 24:00 on 16 March passes (the notification's 5 working days passed on the 9th): nothing written, nothing folded.
    assert await page(cst(2026, 3, 17, 0)) == Counts(received=2, answered=1, on_time=1, overdue=1, notifications_received=1,
                                                     notifications_overdue=1)
    assert await page(cst(2026, 3, 16, 23, 59)) == Counts(received=2, answered=1, on_time=1, still_open=1,
                                                          notifications_received=1, notifications_overdue=1)


async def test_a_month_whose_deadlines_still_run_is_provisional_and_never_painted_short_of_a_target(
    engine: object, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Issue 23: July is final once every deadline of its cases has passed (24:00 on 31 July here); until
    # then the page says so and why, and judges nothing (seed 000 工作制度 二: replies run to the next 20th).
    from gateway.clock import FakeClock
    from gateway.tracking.tracker import CaseTracker
    from gateway.web import targets
    from gateway.web.dashboard_view import build_dashboard
    from gateway.web.render import render_dashboard

    store = SqlCaseStore(engine)  # type: ignore[arg-type]
    now = cst(2026, 7, 22, 9)
    waiting = evaluate(a_query(cst(2026, 7, 17, 10), rules, real_calendar), now)  # Fri 17 Jul: due 24:00 Fri 31 Jul
    missed = evaluate(a_query(cst(2026, 7, 1, 10), rules, real_calendar), now)  # due 15 Jul, never answered
    await store.add_cases([waiting, missed])
    view = await build_dashboard(DashboardReader(engine, real_calendar), "43", "2026-07", now)  # type: ignore[arg-type]
    assert view.provisional and view.status == "进行中：1 件未到期，最迟 2026-07-31 定稿"
    assert view.total.received == 2 and view.total.overdue == 1  # a 0% feedback rate, so far
    assert [r.band for r in view.rows if r.counts.received] == [targets.PROVISIONAL]
    assert all(f.meets is None for f in view.headline)
    html = render_dashboard(view)
    assert "进行中：1 件未到期，最迟 2026-07-31 定稿" in html
    assert 'band-below"' not in html and ">未达标<" not in html and "· 未达标" not in html  # (the legend names it)
    # Final on 1 August: frozen, and judged.
    tracker = CaseTracker(store, FakeClock(now), real_calendar, rules)
    assert await tracker.close_due_periods(cst(2026, 8, 1)) == ["2026-07"]
    view = await build_dashboard(DashboardReader(engine, real_calendar), "43", "2026-07", cst(2026, 8, 1, 9))  # type: ignore[arg-type]
    assert not view.provisional and view.status == "已定稿（2026-08-01）"
    assert [r.band for r in view.rows if r.counts.received] == [targets.BELOW]
    assert 'band-below"' in render_dashboard(view)
