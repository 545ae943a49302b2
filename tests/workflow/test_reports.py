"""The seeds' reports: the monthly 汇总表 (seed 000) and the half-year / annual reports (seed 002, 第二十七–二十八条)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import typer
from openpyxl import load_workbook
from typer.testing import CliRunner

from gateway.cli import reports_cmds
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import record_feedback
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.ports import InMemoryCaseSource
from gateway.workflow.reports import ReportKind, report_period

from .builders import RESIDENCE, a_query
from .conftest import cst

runner = CliRunner()
MARCH = ReportingMonth(2026, 3)


def test_the_half_year_of_statistical_year_2026_is_october_to_march_due_by_the_13th_16th_and_20th_of_april() -> None:
    # 第二十八条: 镇、县、市分别于每年4月(半年报)或10月(全年报)的13、16、20日前逐级上报;
    # seed 000: 计划生育统计期限为上年10月1日0时至本年9月30日24时.
    half = report_period(ReportKind.HALF_YEAR, "2026h1")
    assert half.quarters == (Quarter(2025, 4), Quarter(2026, 1))
    assert (str(half.months[0]), str(half.months[-1])) == ("2025-10", "2026-03")
    assert half.due is not None and (half.due.township, half.due.county, half.due.city) == (
        date(2026, 4, 13), date(2026, 4, 16), date(2026, 4, 20))


def test_the_annual_report_covers_the_statistical_year_and_is_due_in_october() -> None:
    # 第二十八条: 表二和表三为半年、全年报表,表五为全年报表.
    year = report_period(ReportKind.ANNUAL, "2026")
    assert year.quarters == (Quarter(2025, 4), Quarter(2026, 1), Quarter(2026, 2), Quarter(2026, 3))
    assert len(year.months) == 12 and str(year.months[-1]) == "2026-09"
    assert year.due is not None and year.due.county == date(2026, 10, 16)
    assert "省表五" in year.title


def test_the_monthly_table_is_due_on_its_20th() -> None:
    # Seed 000: 乡(镇)级《流动人口计划生育情况汇总表》实行一月一报告制度; 工作制度 七: 每月20日为当月提交查询和反馈信息截止日.
    month = report_period(ReportKind.MONTHLY, "2026-03")
    assert month.months == (MARCH,) and month.due is None and "汇总表" in month.title
    assert month.due_day == date(2026, 3, 20)
    assert month.rules() == ["exchange figures by reporting month: 2026-03 … 2026-03 (2026-02-21 – 2026-03-20); "
                             "工作制度 七 (seed 000): 每月20日为当月提交查询和反馈信息截止日"]


def test_a_half_year_counts_events_from_1_october_to_31_march_and_exchange_figures_by_the_reporting_months_ending_in_it() -> None:
    # Seed 000 登记制度 七 (上年10月1日0时至本年9月30日24时); seed 002 范文篇4 第十六条(五) (上年10月1日到当年3月31日).
    half = report_period(ReportKind.HALF_YEAR, "2026H1")
    assert (half.events_from, half.events_to) == (date(2025, 10, 1), date(2026, 3, 31))
    events, exchange = half.rules()
    assert "2025-10-01 – 2026-03-31" in events and "第十六条(五)" in events and "登记制度 七" in events
    assert "2025-10 … 2026-03 (2025-09-21 – 2026-03-20)" in exchange and "cutoff (the 20th) falls in the half-year" in exchange
    year = report_period(ReportKind.ANNUAL, "2026")
    assert (year.events_from, year.events_to) == (date(2025, 10, 1), date(2026, 9, 30))
    assert "2025-10 … 2026-09 (2025-09-21 – 2026-09-20)" in year.rules()[1]


@pytest.mark.parametrize("kind,text", [(ReportKind.HALF_YEAR, "2026"), (ReportKind.ANNUAL, "2026H1"), (ReportKind.MONTHLY, "2026Q1")])
def test_a_period_of_the_wrong_shape_is_refused(kind: ReportKind, text: str) -> None:
    with pytest.raises(ValueError):
        report_period(kind, text)


@pytest.fixture
def source(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> InMemoryCaseSource:
    found = record_feedback(a_query(cst(2026, 3, 2, 9), rules, real_calendar, registration="430521101"), cst(2026, 3, 3),
                            FeedbackResult.FOUND)
    nsp = record_feedback(a_query(cst(2026, 3, 2, 9), rules, real_calendar, registration="430521102"), cst(2026, 3, 3),
                          FeedbackResult.NO_SUCH_PERSON, reason=NoSuchPersonReason.WRONG_NAME)
    open_ = a_query(cst(2026, 3, 2, 9), rules, real_calendar, registration="430521102")
    notified = a_query(cst(2026, 1, 5, 9), rules, real_calendar, kind=CaseKind.NOTIFICATION, registration="430521101")
    closures = {m: m.ends_at for m in (*Quarter(2025, 4).months, *Quarter(2026, 1).months)}
    return InMemoryCaseSource([found, nsp, open_, notified], closures,
                              {Quarter(2025, 4): Quarter(2025, 4).ends_at, Quarter(2026, 1): Quarter(2026, 1).ends_at})


@pytest.fixture
def reports_app(source: InMemoryCaseSource) -> Iterator[typer.Typer]:
    previous = reports_cmds._source_provider, reports_cmds._clock
    reports_cmds.configure(lambda: source)
    app = typer.Typer()
    app.add_typer(reports_cmds.app, name="reports")
    app.command("other")(lambda: None)
    yield app
    reports_cmds._source_provider, reports_cmds._clock = previous


def rows_of(app: typer.Typer, *args: str) -> list[dict[str, str]]:
    result = runner.invoke(app, ["reports", *args, "--csv"])
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    return [dict(zip(header.split(","), row.split(","))) for row in rows]


def test_the_monthly_table_gives_each_township_and_the_county_total(reports_app: typer.Typer) -> None:
    rows = rows_of(reports_app, "monthly", "--period", "2026-03", "--region", "430521")
    assert [r["region"] for r in rows] == ["430521101", "430521102", "430521"]
    county = rows[-1]
    assert (county["level"], county["received"], county["answered"], county["no_such_person"]) == ("county", "3", "2", "1")
    assert county["feedback_rate"] == "66.7%"  # rule 十三: answered ÷ queries received


def test_the_half_year_report_sums_its_closed_quarters_and_keeps_notifications_apart(reports_app: typer.Typer) -> None:
    rows = rows_of(reports_app, "half-year", "--period", "2026H1", "--region", "430521")
    county = rows[-1]
    assert (county["received"], county["notifications_received"], county["notifications_overdue"]) == ("3", "1", "1")
    sender = rows_of(reports_app, "half-year", "--period", "2026H1", "--region", RESIDENCE)
    assert sender[0]["queries_sent"] == "3" and sender[0]["accuracy"] == "50.0%"


def test_a_report_is_the_same_every_time_it_is_made(reports_app: typer.Typer) -> None:
    args = ["reports", "half-year", "--period", "2026H1", "--region", "43"]
    first, second = runner.invoke(reports_app, args), runner.invoke(reports_app, args)
    assert first.exit_code == 0 and first.stdout == second.stdout
    assert "due: township by 2026-04-13, county by 2026-04-16, city by 2026-04-20" in first.stdout


def test_a_report_for_a_period_not_final_is_provisional_and_says_why(reports_app: typer.Typer) -> None:
    reports_cmds.configure(reports_cmds._source_provider, clock=lambda: cst(2026, 7, 25))  # type: ignore[arg-type]
    result = runner.invoke(reports_app, ["reports", "annual", "--period", "2026", "--region", "430521"])
    assert result.exit_code == 0, result.stderr
    # Q4 and Q1 are closed; Q2 (quiet, not closed here) is due to close; Q3 has not reached its cutoff.
    assert "2026Q2 进行中：期限均已届满，待网关下一次定稿" in result.stdout
    assert "2026Q3 进行中：报送至 2026-09-20 截止（每月20日），0 件未到期，最迟 2026-09-20 定稿" in result.stdout
    assert "not judged against any target until final" in result.stdout
    rows = rows_of(reports_app, "annual", "--period", "2026", "--region", "430521")
    assert {r["provisional"] for r in rows} == {"1"} and rows[-1]["received"] == "3"
    assert {r["provisional"] for r in rows_of(reports_app, "half-year", "--period", "2026H1", "--region", "430521")} == {"0"}


def test_a_report_for_a_period_not_begun_is_refused(reports_app: typer.Typer) -> None:
    reports_cmds.configure(reports_cmds._source_provider, clock=lambda: cst(2026, 9, 20))  # type: ignore[arg-type]
    result = runner.invoke(reports_app, ["reports", "annual", "--period", "2027", "--region", "430521"])
    assert result.exit_code == 2 and "has not begun" in result.stderr


def test_the_xlsx_holds_the_rows_of_the_csv_as_numbers(reports_app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    result = runner.invoke(reports_app, ["reports", "monthly", "--period", "2026-03", "--region", "430521", "--xlsx", str(path)])
    assert result.exit_code == 0, result.stderr
    sheet = load_workbook(path).active
    values = [row for row in sheet.iter_rows(values_only=True) if row and row[0]]
    header_at = next(i for i, row in enumerate(values) if row[0] == "region")
    county = dict(zip(values[header_at], values[-1]))
    assert county["region"] == "430521" and county["received"] == 3 and county["feedback_rate"] == "66.7%"
    assert "汇总表" in values[0][0]


def test_events_of_the_half_years_last_days_are_counted_when_notified_after_its_months_closed_up_to_its_due_day() -> None:
    # A birth of 25 Mar 2026 is notified on 27 Mar, after March (to 20 Mar) closed: the table due by
    # Mon 13 Apr must hold it, so events are counted as of the report, but never past its due day.
    half = report_period(ReportKind.HALF_YEAR, "2026H1")
    assert half.events_as_of(cst(2026, 4, 10, 9)) == cst(2026, 4, 10, 9)
    assert half.events_as_of(cst(2026, 6, 1, 9)) == cst(2026, 4, 13, 23, 59, 59, 999999)
    monthly = report_period(ReportKind.MONTHLY, "2026-03")
    assert monthly.events_as_of(cst(2026, 6, 1, 9)) == cst(2026, 6, 1, 9)
