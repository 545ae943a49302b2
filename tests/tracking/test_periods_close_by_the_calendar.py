"""Issue 23: replies judged by their working-day deadline, and every period closed by the calendar.

On SQLite and PostgreSQL (`database_url`), through the SQL case store and the tracker's tick:

* a reply given after the 20th but inside its 10 / 5 working days is on time, in the month of its query
  (seed 000 工作制度 二: 每个月21日到下个月20日前…反馈…上个月…信息; seed 002 范文篇9 五(三));
* a month is final (closed, frozen) once every deadline of its cases has passed, and by the next 20th
  at the latest (gateway.workflow.finality); until then it stays open (provisional);
* a month or quarter without cases closes at its cutoff, with empty figures (工作制度 七: every month's
  20th is a cutoff, every quarter a cycle, with or without traffic).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.clock import FakeClock
from gateway.tracking.tracker import CaseTracker
from gateway.workflow.accounting import RULES_DEADLINE, Counts
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, evaluate
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.feedback_handling import handle_feedback, rebuild_ledger

from ..workflow.builders import REGISTRATION, a_query
from ..workflow.conftest import cst


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlCaseStore]:
    engine = create_engine(database_url)
    await create_schema(engine)
    try:
        yield SqlCaseStore(engine)
    finally:
        await engine.dispose()


def tracker_of(store: SqlCaseStore, rules: DeadlineRuleSet, calendar: WorkingDayCalendar) -> CaseTracker:
    return CaseTracker(store, FakeClock(cst(2020, 1, 1)), calendar, rules)


async def received(store: SqlCaseStore, at: datetime, rules: DeadlineRuleSet, calendar: WorkingDayCalendar,
                   kind: CaseKind = CaseKind.QUERY) -> Case:
    case = evaluate(a_query(at, rules, calendar, kind=kind), at)
    assert await store.add_case(case)
    return case


async def answered(store: SqlCaseStore, case: Case, at: datetime) -> Case:
    ledger = rebuild_ledger(c for c in await store.cases_for_key(case.strike_key) if c.case_id != case.case_id)
    outcome = handle_feedback(evaluate(case, at), ledger, at, FeedbackResult.FOUND)
    assert await store.save_answer(outcome.case, outcome.charge)
    return outcome.case


async def frozen(store: SqlCaseStore, period: str) -> dict[str, Counts]:
    snapshot = await store.period_snapshot(period)
    assert snapshot is not None, f"{period} is not closed"
    assert snapshot.rules_version == RULES_DEADLINE
    return snapshot.as_dict()


async def test_a_reply_after_the_20th_within_its_working_days_is_on_time_and_frozen_in_the_month_of_its_query(
    store: SqlCaseStore, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(store, rules, real_calendar)
    case = await received(store, cst(2026, 7, 17, 10), rules, real_calendar)  # Fri 17 Jul: due 24:00 Fri 31 Jul
    assert await tracker.close_due_periods(cst(2026, 7, 21)) == []  # past the cutoff: provisional, a deadline runs
    reply = await answered(store, case, cst(2026, 7, 22, 10))  # Wed 22 Jul
    assert reply.state.value == "answered_on_time"
    assert await tracker.close_due_periods(cst(2026, 7, 31, 23, 59)) == []
    assert await tracker.close_due_periods(cst(2026, 8, 1)) == ["2026-07"]
    assert (await frozen(store, "2026-07"))[REGISTRATION] == Counts(received=1, answered=1, on_time=1)


async def test_a_month_without_pending_deadlines_closes_at_its_cutoff(
    store: SqlCaseStore, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(store, rules, real_calendar)
    case = await received(store, cst(2026, 5, 4, 10), rules, real_calendar)  # due in mid-May, before the 20th
    await answered(store, case, cst(2026, 5, 6, 10))
    assert await tracker.close_due_periods(cst(2026, 5, 20, 23, 59)) == []  # submissions still open
    assert await tracker.close_due_periods(cst(2026, 5, 21)) == ["2026-05"]


async def test_a_month_is_final_by_the_next_20th_even_while_a_deadline_still_runs(
    store: SqlCaseStore, real_calendar: WorkingDayCalendar
) -> None:
    # A province allowing 30 working days (a local rule-set): the deadline outruns the next window.
    long = DeadlineRuleSet("test-30", {k: 30 for k in CaseKind}, due_soon_working_days=2)
    tracker = tracker_of(store, long, real_calendar)
    await received(store, cst(2026, 7, 20, 10), long, real_calendar)  # due in September
    assert await tracker.close_due_periods(cst(2026, 8, 20, 23, 59)) == []
    assert await tracker.close_due_periods(cst(2026, 8, 21)) == ["2026-07", "2026-08"]  # August: quiet, closes too
    assert (await frozen(store, "2026-07"))[REGISTRATION] == Counts(received=1, still_open=1)
    assert await frozen(store, "2026-08") == {}


async def test_a_quiet_month_and_a_quiet_quarter_close_by_the_calendar_with_empty_figures(
    store: SqlCaseStore, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(store, rules, real_calendar)
    case = await received(store, cst(2026, 1, 5, 10), rules, real_calendar)  # January's only case
    await answered(store, case, cst(2026, 1, 6, 10))
    # February and March are quiet: each closes at its 20th, and the quarter with March.
    assert await tracker.close_due_periods(cst(2026, 2, 21, 8)) == ["2026-01", "2026-02"]
    assert await frozen(store, "2026-02") == {}
    assert await tracker.close_due_periods(cst(2026, 3, 21, 8)) == ["2026-03", "2026Q1"]
    assert (await frozen(store, "2026Q1"))[REGISTRATION] == Counts(received=1, answered=1, on_time=1)
    # A whole quiet quarter: three empty months and an empty quarter, after a gateway outage of three months.
    assert await tracker.close_due_periods(cst(2026, 6, 25)) == ["2026-04", "2026-05", "2026-06", "2026Q2"]
    assert await frozen(store, "2026Q2") == {}
    assert await tracker.close_due_periods(cst(2026, 6, 25, 1)) == []  # each period closes once


async def test_a_gateway_without_any_case_starts_closing_with_the_month_before_its_first_tick(
    store: SqlCaseStore, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(store, rules, real_calendar)
    assert await tracker.close_due_periods(cst(2026, 5, 10)) == ["2026-04"]
    assert await tracker.close_due_periods(cst(2026, 5, 21)) == ["2026-05"]
    assert await tracker.close_due_periods(cst(2026, 6, 21)) == ["2026-06", "2026Q2"]


async def test_the_quarter_ending_on_20_september_closes_after_its_deadlines_across_national_day(
    store: SqlCaseStore, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(store, rules, real_calendar)
    # Fri 19 Sep 2025 (reporting month 2025-09, the last of 2025Q3): 10 working days, 1-8 Oct off, end Fri 10 Oct.
    september = await received(store, cst(2025, 9, 19, 10), rules, real_calendar)
    assert september.deadline.last_working_day.isoformat() == "2025-10-10"
    # Tue 30 Sep 2025 belongs to reporting month 2025-10 (2025Q4, statistical year 2026): due Tue 21 Oct.
    october = await received(store, cst(2025, 9, 30, 16), rules, real_calendar)
    assert str(october.reporting_month) == "2025-10" and october.deadline.last_working_day.isoformat() == "2025-10-21"
    await answered(store, september, cst(2025, 10, 9, 10))  # the first working day after the holiday
    assert await tracker.close_due_periods(cst(2025, 10, 10, 23)) == []
    assert await tracker.close_due_periods(cst(2025, 10, 11)) == ["2025-09", "2025Q3"]
    assert (await frozen(store, "2025Q3"))[REGISTRATION] == Counts(received=1, answered=1, on_time=1)
    await answered(store, october, cst(2025, 10, 21, 23))  # after October's 20th, inside its deadline
    assert await tracker.close_due_periods(cst(2025, 10, 21, 23, 30)) == []
    assert await tracker.close_due_periods(cst(2025, 10, 22)) == ["2025-10"]
    assert (await frozen(store, "2025-10"))[REGISTRATION] == Counts(received=1, answered=1, on_time=1)


async def test_a_birth_query_of_the_20th_is_due_in_five_working_days_and_its_month_waits_for_it(
    store: SqlCaseStore, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(store, rules, real_calendar)
    birth = await received(store, cst(2026, 3, 20, 15), rules, real_calendar, CaseKind.BIRTH_QUERY)
    assert birth.deadline.last_working_day.isoformat() == "2026-03-27"  # 5 working days (范文篇9 五(三))
    assert await tracker.close_due_periods(cst(2026, 3, 27, 12)) == []
    late = await answered(store, birth, cst(2026, 3, 28, 9))  # the day after: late, whatever the close
    assert late.state.value == "answered_late"
    assert await tracker.close_due_periods(cst(2026, 3, 28, 10)) == ["2026-03", "2026Q1"]
    assert (await frozen(store, "2026-03"))[REGISTRATION] == Counts(received=1, answered=1, late=1)


async def test_events_are_selected_by_the_date_of_the_event_whatever_month_they_were_notified_in(
    store: SqlCaseStore, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Seed 000 登记制度 七 / seed 002 范文篇4 第十六条(五): the half-year 2026H1 is 1 Oct 2025 – 31 Mar 2026.
    from datetime import date

    from gateway.workflow.cases import open_case
    from gateway.workflow.events import EventCounts, count_events

    def notification(case_id: str, kind: str, event: date, received: datetime) -> Case:
        return open_case(case_id, CaseKind.NOTIFICATION, "440106001", REGISTRATION, "43052119900101002X", received,
                         rules, real_calendar, event_date=event, notification_kind=kind)

    await store.add_cases([
        notification("birth-27-sep", "1", date(2025, 9, 27), cst(2025, 10, 10, 9)),  # last statistical year's
        notification("op-1-oct", "2", date(2025, 10, 1), cst(2025, 10, 9, 9)),  # after National Day
        notification("preg-31-mar", "4", date(2026, 3, 31), cst(2026, 4, 3, 9)),  # notified in reporting month 04
        notification("cert", "5", date(2026, 1, 5), cst(2026, 1, 6, 9)),  # kind ⑤: not an event of 表二/三
    ])
    found = await store.events_dated(date(2025, 10, 1), date(2026, 3, 31))
    assert sorted(e.case_id for e in found) == ["op-1-oct", "preg-31-mar"]
    assert count_events(found, date(2025, 10, 1), date(2026, 3, 31), cst(2026, 4, 10)) == {
        "440106001": EventCounts(operations=1, pregnancies=1)}
    assert [e.case_id for e in await store.events_dated(date(2024, 10, 1), date(2025, 9, 30))] == ["birth-27-sep"]


async def test_a_quiet_month_closed_by_the_calendar_gives_a_final_monthly_report_with_empty_figures(
    store: SqlCaseStore, database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Before issue 23 a month without cases never closed, and `gateway reports monthly` refused it for ever.
    import asyncio

    import typer
    from typer.testing import CliRunner

    from gateway.adapters.sql.case_source import SqlCaseSource
    from gateway.cli import reports_cmds

    tracker = tracker_of(store, rules, real_calendar)
    case = await received(store, cst(2026, 1, 5, 10), rules, real_calendar)
    await answered(store, case, cst(2026, 1, 6, 10))
    assert await tracker.close_due_periods(cst(2026, 2, 21, 8)) == ["2026-01", "2026-02"]
    previous = reports_cmds._source_provider, reports_cmds._clock
    reports_cmds.configure(lambda: SqlCaseSource(database_url), clock=lambda: cst(2026, 3, 1))
    app = typer.Typer()
    app.add_typer(reports_cmds.app, name="reports")
    app.command("other")(lambda: None)
    try:
        # The command runs its own event loop (SqlCaseSource): off this test's loop, one at a time (CliRunner
        # swaps the process's stdout).
        def run() -> list:  # type: ignore[type-arg]
            return [CliRunner().invoke(app, ["reports", "monthly", "--period", "2026-02", "--region", REGISTRATION[:6],
                                             *extra]) for extra in ([], ["--csv"])]

        table, csv = await asyncio.to_thread(run)
    finally:
        reports_cmds._source_provider, reports_cmds._clock = previous
    assert table.exit_code == 0, table.stderr
    assert "status: 已定稿（2026-02-21）" in table.stdout and "due: 2026-02-20" in table.stdout
    header, county = csv.stdout.splitlines()
    cells = dict(zip(header.split(","), county.split(",")))
    assert (cells["region"], cells["received"], cells["feedback_rate"], cells["provisional"]) == ("430521", "0", "—", "0")


async def test_a_quiet_half_year_and_year_close_by_the_calendar_and_their_reports_are_final(
    store: SqlCaseStore, database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # One query on 30 September 2025 (reporting month 2025-10, due 21 October after National Day), then nothing:
    # the half-year 2026H1 (2025Q4 + 2026Q1) and the statistical year 2026 close by the calendar alone.
    import asyncio

    import typer
    from typer.testing import CliRunner

    from gateway.adapters.sql.case_source import SqlCaseSource
    from gateway.cli import reports_cmds

    tracker = tracker_of(store, rules, real_calendar)
    case = await received(store, cst(2025, 9, 30, 16), rules, real_calendar)
    await answered(store, case, cst(2025, 10, 20, 10))
    closed = await tracker.close_due_periods(cst(2026, 3, 21, 1))
    assert closed == ["2025-10", "2025-11", "2025-12", "2025Q4", "2026-01", "2026-02", "2026-03", "2026Q1"]
    assert await tracker.close_due_periods(cst(2026, 9, 21, 1)) == [
        "2026-04", "2026-05", "2026-06", "2026Q2", "2026-07", "2026-08", "2026-09", "2026Q3"]
    previous = reports_cmds._source_provider, reports_cmds._clock
    reports_cmds.configure(lambda: SqlCaseSource(database_url), clock=lambda: cst(2026, 10, 1))
    app = typer.Typer()
    app.add_typer(reports_cmds.app, name="reports")
    app.command("other")(lambda: None)

    def run() -> list:  # type: ignore[type-arg]
        return [CliRunner().invoke(app, ["reports", kind, "--period", period, "--region", REGISTRATION[:6], "--csv"])
                for kind, period in (("half-year", "2026H1"), ("annual", "2026"))]

    try:
        results = await asyncio.to_thread(run)
    finally:
        reports_cmds._source_provider, reports_cmds._clock = previous
    for result in results:
        assert result.exit_code == 0, result.stderr
        header, *_, county = result.stdout.splitlines()  # the townships, then the county's total
        cells = dict(zip(header.split(","), county.split(",")))
        assert (cells["region"], cells["received"], cells["on_time"], cells["provisional"]) == ("430521", "1", "1", "0")
