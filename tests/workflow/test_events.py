"""Events ①–④ are counted by the statistical year of their own date, not by the month they were notified in.

Seed 000 登记制度 七: 计划生育统计期限为上年10月1日0时至本年9月30日24时; seed 002 范文篇4 第十六条(五): 年中报表
统计上年10月1日到当年3月31日情况, 年终报表统计上年10月1日到当年9月30日的情况; 范文篇10 第二十四条: ①–④ 统计年度内.
"""

from __future__ import annotations

from datetime import date, datetime

import typer
from typer.testing import CliRunner

from gateway.cli import reports_cmds
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, open_case, withdraw
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.events import EventCounts, count_events, event_of
from gateway.workflow.periods import ReportingMonth
from gateway.workflow.ports import InMemoryCaseSource
from gateway.workflow.reports import ReportKind, report_period

from .builders import REGISTRATION, RESIDENCE
from .conftest import cst

runner = CliRunner()


def notified(kind: str, event: date, received: datetime, rules: DeadlineRuleSet, calendar: WorkingDayCalendar,
             case_id: str) -> Case:
    return open_case(case_id, CaseKind.NOTIFICATION, RESIDENCE, REGISTRATION, "43052119900101002X", received, rules,
                     calendar, event_date=event, learned_on=event, notification_kind=kind)


def test_a_birth_of_27_september_notified_on_10_october_counts_in_the_statistical_year_that_ended_on_30_september(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    birth = notified("1", date(2025, 9, 27), cst(2025, 10, 10, 9), rules, real_calendar, "n-birth")
    assert birth.reporting_month == ReportingMonth(2025, 10)  # an exchange of October (statistical year 2026)
    year_2025, year_2026 = report_period(ReportKind.ANNUAL, "2025"), report_period(ReportKind.ANNUAL, "2026")
    facts = [event_of(birth)]
    as_of = cst(2025, 11, 1)
    assert count_events(facts, year_2025.events_from, year_2025.events_to, as_of) == {RESIDENCE: EventCounts(births=1)}  # type: ignore[arg-type]
    assert count_events(facts, year_2026.events_from, year_2026.events_to, as_of) == {}  # type: ignore[arg-type]


def test_the_half_year_takes_events_of_1_october_to_31_march_and_the_year_to_30_september(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    cases = [
        notified("2", date(2025, 10, 1), cst(2025, 10, 2, 9), rules, real_calendar, "op-1-oct"),  # first day
        notified("4", date(2026, 3, 31), cst(2026, 4, 2, 9), rules, real_calendar, "preg-31-mar"),  # last day of H1
        notified("3", date(2026, 4, 1), cst(2026, 4, 3, 9), rules, real_calendar, "contra-1-apr"),  # second half
        notified("5", date(2026, 1, 5), cst(2026, 1, 6, 9), rules, real_calendar, "cert"),  # ⑤: no event of 表二/三
        withdraw(notified("1", date(2026, 2, 1), cst(2026, 2, 2, 9), rules, real_calendar, "withdrawn"), cst(2026, 2, 3)),
    ]
    facts = [f for f in map(event_of, cases) if f is not None]
    half, year = report_period(ReportKind.HALF_YEAR, "2026H1"), report_period(ReportKind.ANNUAL, "2026")
    as_of = cst(2026, 10, 20)
    assert count_events(facts, half.events_from, half.events_to, as_of) == {  # type: ignore[arg-type]
        RESIDENCE: EventCounts(operations=1, pregnancies=1)}
    assert count_events(facts, year.events_from, year.events_to, as_of) == {  # type: ignore[arg-type]
        RESIDENCE: EventCounts(operations=1, contraception_due=1, pregnancies=1)}
    # Known at the instant of the count only: the pregnancy of 31 March was notified on 2 April.
    assert count_events(facts, half.events_from, half.events_to, cst(2026, 4, 1)) == {  # type: ignore[arg-type]
        RESIDENCE: EventCounts(operations=1)}


def test_the_half_year_report_prints_its_events_by_date_beside_the_exchange_by_reporting_month(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    late_birth = notified("1", date(2025, 9, 27), cst(2025, 10, 10, 9), rules, real_calendar, "n-birth")
    pregnancy = notified("4", date(2026, 3, 31), cst(2026, 4, 2, 9), rules, real_calendar, "n-preg")
    source = InMemoryCaseSource([late_birth, pregnancy])
    previous = reports_cmds._source_provider, reports_cmds._clock
    reports_cmds.configure(lambda: source, clock=lambda: cst(2026, 4, 10))
    app = typer.Typer()
    app.add_typer(reports_cmds.app, name="reports")
    app.command("other")(lambda: None)
    try:
        result = runner.invoke(app, ["reports", "half-year", "--period", "2026H1", "--region", RESIDENCE, "--csv"])
        header, row = result.stdout.splitlines()
        cells = dict(zip(header.split(","), row.split(",")))
        # The birth of 27 Sep is the last year's; the pregnancy of 31 Mar is this half-year's, notified in April.
        assert (cells["events_births"], cells["events_pregnancies"]) == ("0", "1")
        assert cells["notifications_sent"] == "1"  # the exchange: October's notification (reporting months 10–3)
        assert header.endswith(",events_births,events_operations,events_contraception_due,events_pregnancies,provisional")
        table = runner.invoke(app, ["reports", "half-year", "--period", "2026H1", "--region", RESIDENCE])
        assert "by the date of the event: 2025-10-01 – 2026-03-31" in table.stdout
        monthly = runner.invoke(app, ["reports", "monthly", "--period", "2026-04", "--region", RESIDENCE, "--csv"])
        header, row = monthly.stdout.splitlines()
        assert dict(zip(header.split(","), row.split(",")))["events_births"] == "—"
    finally:
        reports_cmds._source_provider, reports_cmds._clock = previous
