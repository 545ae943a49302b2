"""When a reporting month is final (issue 23; gateway.workflow.finality).

Seed 000 工作制度 七: 每月20日为当月提交查询和反馈信息截止日 — the 20th closes submissions; 工作制度 二: 乡(镇)级
每个月21日到下个月20日前…反馈…上个月计划生育信息 — replies run to the next 20th, within the working days of
seed 002 范文篇9 五(三) (10 / 5).
"""

from __future__ import annotations

from datetime import date

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.case_facts import facts_of
from gateway.workflow.cases import record_feedback, withdraw
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.finality import final_at, month_progress, period_progress, provisional_text
from gateway.workflow.periods import Quarter, ReportingMonth

from .builders import a_query
from .conftest import cst

JULY = ReportingMonth(2026, 7)


def test_a_month_is_final_once_its_latest_deadline_has_passed_and_never_before_its_20th() -> None:
    assert final_at(JULY, None) == JULY.ends_at  # quiet: final at 24:00 on 20 July
    assert final_at(JULY, cst(2026, 7, 10)) == JULY.ends_at  # every deadline before the 20th
    assert final_at(JULY, cst(2026, 8, 1)) == cst(2026, 8, 1)  # the latest deadline, 24:00 on 31 July


def test_a_month_is_final_by_the_next_windows_20th_at_the_latest() -> None:
    assert final_at(JULY, cst(2026, 9, 3)) == cst(2026, 8, 21)  # 24:00 on 20 August


def test_a_month_waits_for_every_counted_case_and_says_how_many_are_not_due_and_when_it_will_be_final(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    answered = record_feedback(a_query(cst(2026, 7, 17, 10), rules, real_calendar), cst(2026, 7, 22), FeedbackResult.FOUND)
    open_ = a_query(cst(2026, 7, 16, 10), rules, real_calendar)  # due 24:00 Thu 30 Jul
    gone = withdraw(a_query(cst(2026, 7, 20, 10), rules, real_calendar), cst(2026, 7, 20, 11))  # not counted
    birth = a_query(cst(2026, 7, 20, 9), rules, real_calendar, kind=CaseKind.BIRTH_QUERY)  # 5 days: 27 Jul
    facts = [facts_of(c) for c in (answered, open_, gone, birth)]
    progress = month_progress(JULY, facts, cst(2026, 7, 28, 9))
    # The answered case's deadline (31 July) is waited for; only the open one is 未到期 (still open).
    assert (progress.not_due, progress.latest_due, progress.is_final) == (1, cst(2026, 8, 1), False)
    assert progress.final_on == date(2026, 7, 31)
    assert provisional_text(period_progress(JULY, facts, cst(2026, 7, 28, 9))) == "进行中：1 件未到期，最迟 2026-07-31 定稿"
    assert month_progress(JULY, facts, cst(2026, 8, 1)).is_final


def test_a_quarter_is_final_when_its_last_month_is_and_before_the_cutoff_its_text_names_the_20th() -> None:
    q3 = Quarter(2026, 3)
    progress = period_progress(q3, (), cst(2026, 9, 1))
    assert not progress.is_final and progress.cutoff_day == date(2026, 9, 20)
    assert provisional_text(progress) == "进行中：报送至 2026-09-20 截止（每月20日），0 件未到期，最迟 2026-09-20 定稿"
    assert period_progress(q3, (), cst(2026, 9, 21)).is_final
