"""Issue 23, the months before a gateway began: final and empty, never provisional for good.

A gateway's records begin with the first month it knows (its earliest case or closure; on an empty store the
month before its first tick, which that tick closes). A period all of whose months come before that has no
case by construction and nothing will ever close it: the reports and the dashboard show it final with empty
figures and say why (本网关启用前，无数据), instead of "进行中 … 最迟 <a date long past>". A gateway whose
old cases are restored or migrated later has its beginning moved back, and those months close as any other.
On SQLite and PostgreSQL (`database_url`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import date, datetime

import pytest
import typer
from typer.testing import CliRunner

from gateway.adapters.sql.case_source import SqlCaseSource
from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.cli import reports_cmds
from gateway.clock import FakeClock
from gateway.tracking.tracker import CaseTracker
from gateway.web.dashboard_data import DashboardReader
from gateway.web.dashboard_view import build_dashboard
from gateway.web.render import render_dashboard
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.deadlines import DeadlineRuleSet
from gateway.workflow.finality import BEFORE_RECORDS

from ..workflow.builders import REGISTRATION
from ..workflow.conftest import cst
from .test_periods_close_by_the_calendar import answered, received

COUNTY = REGISTRATION[:6]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[object]:
    engine = create_engine(database_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


def tracker_of(engine: object, rules: DeadlineRuleSet, calendar: WorkingDayCalendar) -> CaseTracker:
    return CaseTracker(SqlCaseStore(engine), FakeClock(cst(2026, 3, 2)), calendar, rules)  # type: ignore[arg-type]


async def reports(database_url: str, now: datetime, *requests: tuple[str, ...]) -> list[str]:
    """`gateway reports KIND --period P --region COUNTY [--csv]` as of `now`: each command's stdout."""
    app = typer.Typer()
    app.add_typer(reports_cmds.app, name="reports")
    app.command("other")(lambda: None)
    previous = reports_cmds._source_provider, reports_cmds._clock
    reports_cmds.configure(lambda: SqlCaseSource(database_url), clock=lambda: now)

    def run() -> list[str]:  # the command runs its own event loop: off this test's loop
        out = []
        for kind, period, *more in requests:
            result = CliRunner().invoke(app, ["reports", kind, "--period", period, "--region", COUNTY, *more])
            assert result.exit_code == 0, result.stderr
            out.append(result.stdout)
        return out

    try:
        return await asyncio.to_thread(run)
    finally:
        reports_cmds._source_provider, reports_cmds._clock = previous


def county_cells(csv_text: str) -> dict[str, str]:
    header, *_, county = csv_text.splitlines()  # the townships, then the county's total
    cells = dict(zip(header.split(","), county.split(",")))
    assert cells["region"] == COUNTY
    return cells


def latest_days(text: str) -> list[date]:
    return [date.fromisoformat(d) for d in re.findall(r"最迟 (\d{4}-\d{2}-\d{2})", text)]


async def test_a_gateway_started_in_march_2026_reports_the_months_before_it_final_and_empty(
    engine: object, database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(engine, rules, real_calendar)
    store = tracker.store
    # Its first tick, on an empty store on 2 March 2026, closes February (the month before) and nothing earlier.
    assert await tracker.close_due_periods(cst(2026, 3, 2, 9)) == ["2026-02"]
    # Its own month: a query of Tue 10 March (due Tue 24 March) answered on Mon 16 March; March and 2026Q1 close
    # once that deadline has passed, after the quarter's cutoff of 20 March.
    case = await received(store, cst(2026, 3, 10, 10), rules, real_calendar)  # type: ignore[arg-type]
    await answered(store, case, cst(2026, 3, 16, 10))  # type: ignore[arg-type]
    assert await tracker.close_due_periods(cst(2026, 3, 25, 1)) == ["2026-03", "2026Q1"]
    now = cst(2026, 3, 26, 9)

    half_csv, year_csv, half, year, december = await reports(
        database_url, now, ("half-year", "2026H1", "--csv"), ("annual", "2026", "--csv"),
        ("half-year", "2026H1"), ("annual", "2026"), ("monthly", "2025-12"))
    # 2025Q4 (Oct–Dec 2025, before the gateway began) is final and empty; 2026Q1's reply-side figures as usual.
    half_cells = county_cells(half_csv)
    assert (half_cells["received"], half_cells["answered"], half_cells["on_time"], half_cells["provisional"]) == (
        "1", "1", "1", "0")
    assert "2025Q4 … 2025Q4 " + BEFORE_RECORDS in half and "status: 已定稿（2026-03-25）" in half
    assert "进行中" not in half
    # The year is provisional only for its quarters still to come, never for 2025Q4.
    year_cells = county_cells(year_csv)
    assert (year_cells["received"], year_cells["on_time"], year_cells["provisional"]) == ("1", "1", "1")
    status = next(line for line in year.splitlines() if line.startswith("status: "))
    assert "2025Q4" not in status and "2026Q2 进行中" in status
    assert BEFORE_RECORDS in year
    assert all(day >= now.date() for day in latest_days(year)), year  # no 最迟 date in the past
    # A month before the gateway began, alone: final, empty, said so.
    assert f"status: {BEFORE_RECORDS}" in december and "provisional" not in december.split("status:")[0]


async def test_the_dashboard_shows_a_period_before_the_gateway_began_final_and_empty_with_no_past_date(
    engine: object, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(engine, rules, real_calendar)
    assert await tracker.close_due_periods(cst(2026, 3, 2, 9)) == ["2026-02"]
    await received(tracker.store, cst(2026, 3, 10, 10), rules, real_calendar)  # type: ignore[arg-type]
    now = cst(2026, 3, 12, 9)
    reader = DashboardReader(engine, real_calendar)  # type: ignore[arg-type]
    for period in ("2025Q4", "2025-12", "2026-01"):
        view = await build_dashboard(reader, "43", period, now)
        assert (view.status, view.provisional, view.total.received) == (BEFORE_RECORDS, False, 0), period
        html = render_dashboard(view)
        assert BEFORE_RECORDS in html and "待网关下一次定稿" not in html and not latest_days(html)
    # Its own months as usual: February closed empty, March in progress with a 最迟 date ahead.
    assert (await build_dashboard(reader, "43", "2026-02", now)).status == "已定稿（2026-03-02）"
    march = await build_dashboard(reader, "43", "2026-03", now)
    assert march.provisional and march.total.received == 1
    assert all(day >= now.date() for day in latest_days(march.status)) and latest_days(march.status)
    # 2026Q1 holds January (before the gateway) and its own months: provisional, waiting for March only.
    quarter = await build_dashboard(reader, "43", "2026Q1", now)
    assert quarter.provisional and all(day >= now.date() for day in latest_days(quarter.status))


async def test_old_cases_restored_later_move_the_beginning_back_and_their_months_close_properly(
    engine: object, database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    tracker = tracker_of(engine, rules, real_calendar)
    assert await tracker.close_due_periods(cst(2026, 3, 2, 9)) == ["2026-02"]
    # A query of 18 December 2025, migrated from the old system after the gateway began, answered on time.
    old = await received(tracker.store, cst(2025, 12, 18, 10), rules, real_calendar)  # type: ignore[arg-type]
    await answered(tracker.store, old, cst(2025, 12, 22, 10))  # type: ignore[arg-type]
    assert await tracker.close_due_periods(cst(2026, 3, 3, 9)) == ["2025-12", "2025Q4", "2026-01"]
    assert await tracker.close_due_periods(cst(2026, 4, 21, 1)) == ["2026-03", "2026Q1", "2026-04"]
    (half_csv,) = await reports(database_url, cst(2026, 4, 21, 9), ("half-year", "2026H1", "--csv"))
    cells = county_cells(half_csv)
    assert (cells["received"], cells["on_time"], cells["provisional"]) == ("1", "1", "0")
    (november,) = await reports(database_url, cst(2026, 4, 21, 9), ("monthly", "2025-11"))
    assert f"status: {BEFORE_RECORDS}" in november  # still before the records, now from December


async def test_the_scores_of_a_quarter_before_the_gateway_began_are_final_and_empty_never_provisional(
    engine: object, database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    from gateway.cli import scores_cmds
    from gateway.workflow.accounting import Level
    from gateway.workflow.data_files import DEFAULT_SCORING_FILE, DEFAULT_TARGETS_FILE, load_score_formula, load_targets
    from gateway.workflow.periods import Quarter

    tracker = tracker_of(engine, rules, real_calendar)
    assert await tracker.close_due_periods(cst(2026, 3, 2, 9)) == ["2026-02"]
    await received(tracker.store, cst(2026, 3, 10, 10), rules, real_calendar)  # type: ignore[arg-type]
    formula, targets = load_score_formula(DEFAULT_SCORING_FILE), load_targets(DEFAULT_TARGETS_FILE)

    def scores(quarter: str) -> scores_cmds.ScoreTable:
        return scores_cmds.build_rows(SqlCaseSource(database_url), Quarter.parse(quarter), None, Level.TOWNSHIP,
                                      formula, targets, lambda: cst(2026, 3, 12, 9))

    before, own = await asyncio.to_thread(lambda: (scores("2025Q4"), scores("2026Q1")))
    assert (before.status, before.rows) == (f"final: {BEFORE_RECORDS}", [])
    assert own.status.startswith("provisional: ") and {r[-1] for r in own.rows} == {"1"}  # its query, not final yet
