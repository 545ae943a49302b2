"""`gateway scores` over the tracker's own tables (SqlCaseSource), SQLite and PostgreSQL.

A closed quarter shows the figures frozen at its close (R5), whatever arrives later; an open quarter
is counted as of now, from the stored facts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from gateway.adapters.sql.case_source import SqlCaseSource
from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.cli import scores_cmds
from gateway.workflow.accounting import close_month, close_quarter
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, open_case, record_feedback
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.periods import Quarter

from ..workflow.conftest import cst

pytestmark = pytest.mark.database

Q1 = Quarter(2026, 1)
TOWNSHIP, RESIDENCE = "430521101", "440106001"
runner = CliRunner()


def query(case_id: str, received, rules: DeadlineRuleSet, calendar: WorkingDayCalendar) -> Case:  # type: ignore[no-untyped-def]
    return open_case(case_id, CaseKind.QUERY, RESIDENCE, TOWNSHIP, "430521199001010011", received, rules, calendar)


@pytest.fixture
def scores_app(database_url: str) -> Iterator[typer.Typer]:
    previous = (scores_cmds._source_provider, scores_cmds._clock)
    scores_cmds.configure(lambda: SqlCaseSource(database_url), clock=lambda: cst(2026, 3, 30))
    app = typer.Typer()
    app.command("scores")(scores_cmds.scores)
    app.command("other")(lambda: None)
    yield app
    scores_cmds._source_provider, scores_cmds._clock = previous


def csv_row(app: typer.Typer) -> str:
    result = runner.invoke(app, ["scores", "--quarter", "2026Q1", "--csv", "--region", TOWNSHIP])
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.startswith("region,received,answered,on_time,late,overdue,still_open")
    (row,) = rows
    return row.split(",score,")[0] if ",score," in row else ",".join(row.split(",")[:12])


async def store_cases(database_url: str, *cases: Case) -> None:
    engine = create_engine(database_url)
    try:
        await create_schema(engine)
        for case in cases:
            await SqlCaseStore(engine).add_case(case)
    finally:
        await engine.dispose()


async def close_the_quarter_then_answer(database_url: str, late_answer: Case) -> None:
    engine = create_engine(database_url)
    store = SqlCaseStore(engine)
    try:
        closed_at = cst(2026, 3, 21, 0, 5)
        facts = await store.facts_in_months(Q1.months)
        for month in Q1.months:
            await store.close_month(close_month(facts, month, closed_at))
        await store.close_quarter(close_quarter(facts, Q1, closed_at, await store.month_closures(Q1.months)))
        # A reply after the close is delivered and recorded, but the quarter's figures stay frozen.
        await store.save_answer(late_answer, None)
    finally:
        await engine.dispose()


# Synchronous, as the command is: SqlCaseSource runs its own event loop for each query.
def test_scores_of_a_closed_quarter_are_the_figures_frozen_at_its_close(
    database_url: str, scores_app: typer.Typer, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    answered = record_feedback(query("answered", cst(2026, 1, 5, 9), rules, real_calendar), cst(2026, 1, 6),
                               FeedbackResult.FOUND)
    unanswered = query("unanswered", cst(2026, 1, 5, 10), rules, real_calendar)
    asyncio.run(store_cases(database_url, answered, unanswered))

    # Open quarter: counted as of the clock (30 March), from the stored facts.
    assert csv_row(scores_app) == "430521101,2,1,1,0,1,0,0,0,50.0%,50.0%,50.0"

    asyncio.run(close_the_quarter_then_answer(
        database_url, record_feedback(unanswered, cst(2026, 3, 25), FeedbackResult.FOUND)))

    assert csv_row(scores_app) == "430521101,2,1,1,0,1,0,0,0,50.0%,50.0%,50.0"
    result = runner.invoke(scores_app, ["scores", "--quarter", "2026Q1"])
    assert result.stdout.startswith("quarter 2026Q1 (closed, as of 2026-03-20T16:05:00+00:00)")
    # The sender's side, recounted as of the close: two queries sent, one answered by then.
    sender = runner.invoke(scores_app, ["scores", "--quarter", "2026Q1", "--csv", "--region", RESIDENCE])
    header, row = sender.stdout.splitlines()
    cells = dict(zip(header.split(","), row.split(",")))
    assert cells["queries_sent"] == "2" and cells["accuracy"] == "100.0%" and cells["received"] == "0"


def test_a_monthly_report_from_the_database_shows_the_month_as_closed_not_a_later_answer(
    database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Seed 000: 乡(镇)级《流动人口计划生育情况汇总表》实行一月一报告制度 — made from the archive of a closed month.
    from gateway.cli import reports_cmds

    answered = record_feedback(query("answered", cst(2026, 3, 2, 9), rules, real_calendar), cst(2026, 3, 3),
                               FeedbackResult.FOUND)
    unanswered = query("unanswered", cst(2026, 3, 2, 10), rules, real_calendar)
    asyncio.run(store_cases(database_url, answered, unanswered))
    previous = reports_cmds._source_provider, reports_cmds._clock
    reports_cmds.configure(lambda: SqlCaseSource(database_url), clock=lambda: cst(2026, 3, 10))
    app = typer.Typer()
    app.add_typer(reports_cmds.app, name="reports")
    app.command("other")(lambda: None)
    args = ["reports", "monthly", "--period", "2026-03", "--region", TOWNSHIP[:6], "--csv"]
    try:
        # Before the month is final: counted as of the clock, and said to be provisional (issue 23).
        live = runner.invoke(app, args)
        assert live.exit_code == 0, live.stderr
        header, township, county = live.stdout.splitlines()
        cells = dict(zip(header.split(","), county.split(",")))
        assert (cells["received"], cells["answered"], cells["still_open"], cells["provisional"]) == ("2", "1", "1", "1")
        table = runner.invoke(app, args[:-1])  # the open one is not due yet (24:00 on 16 March)
        assert "status: 2026-03 进行中：报送至 2026-03-20 截止（每月20日），1 件未到期，最迟 2026-03-20 定稿" in table.stdout
        asyncio.run(close_the_quarter_then_answer(
            database_url, record_feedback(unanswered, cst(2026, 3, 25), FeedbackResult.FOUND)))
        first, again = runner.invoke(app, args), runner.invoke(app, args)
        assert first.exit_code == 0, first.stderr
        assert first.stdout == again.stdout
        header, township, county = first.stdout.splitlines()
        cells = dict(zip(header.split(","), county.split(",")))
        assert (cells["region"], cells["received"], cells["answered"], cells["overdue"]) == ("430521", "2", "1", "1")
        assert cells["provisional"] == "0"
    finally:
        reports_cmds._source_provider, reports_cmds._clock = previous
