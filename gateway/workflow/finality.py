"""When a period's reply-side figures become final, and what a provisional one is waiting for (issue 23).

The 20th closes a month's *submissions* (seed 000, 流动人口计划生育信息交换平台工作制度 七: 每月20日为
当月提交查询和反馈信息截止日), not the replies due after it: rule 二 has the township answer last
month's information between the 21st and the next 20th (每个月21日到下个月20日前…反馈…上个月计划生育信息),
within the working days of seed 002 范文篇9 五(三) (10, or 5 for births) and 范文篇10 第二十四条 (5 for a
notification). So reporting month M is

* **final** (frozen: the tracker closes it and its snapshot never changes) at
  ``final_at(M) = min(max(cutoff of M, latest deadline of M's cases), cutoff of M + 1)``:
  once every deadline of its cases has passed, and by the next window's 20th (24:00) at the latest;
  the first tick at or after that instant closes it;
* **provisional** until then: its figures are shown as of the moment, said to be provisional and why
  (how many of its cases are not due yet, and the day it will be final at the latest), and never
  judged against a target (a figure still moving cannot have missed it).

A month without cases is final at its cutoff: every period closes by the calendar, quiet ones too.
A quarter is final when its last month is; a statistical half-year or year when its last quarter is.

The gateway's records begin with the first month it knows (its earliest case or closure; on a store with
neither, the month before now's, which its first tick closes): the tracker closes months from there. A
period all of whose months come before it has no case by construction and nothing will ever close it:
it is final with empty figures, said so (本网关启用前，无数据), never provisional. Cases restored or
migrated later move the beginning back, and their months are then closed as any other.

"The deadline of a case" is the deadline in force (a calendar update may move an open one); a case
withdrawn before any reply is not counted, so its deadline is not waited for. An answered case's
deadline is waited for too (the month's final day then follows from its cases alone), but "N 件未到期"
counts the cases still without a reply whose deadline is ahead: the figure the tables show as 未到期
(still open).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.workflow.case_facts import CaseFacts
from gateway.workflow.instants import local_date, to_utc
from gateway.workflow.periods import Quarter, ReportingMonth, reporting_month_of


def records_begin(first_known: ReportingMonth | None, now: datetime) -> ReportingMonth:
    """The first month the gateway accounts for: `first_known` (its earliest case or closure), else the month
    before now's (the first a brand-new gateway's first tick closes)."""
    return first_known if first_known is not None else reporting_month_of(now).previous()


def before_records(period: ReportingMonth | Quarter, begins: ReportingMonth) -> bool:
    """Every month of `period` comes before the gateway's records begin: final and empty, by construction."""
    months = period.months if isinstance(period, Quarter) else (period,)
    return months[-1] < begins


def final_at(month: ReportingMonth, latest_due: datetime | None) -> datetime:
    """The instant month `month` becomes final, given the latest deadline of its counted cases."""
    waited = month.ends_at if latest_due is None else max(month.ends_at, to_utc(latest_due))
    return min(waited, month.next().ends_at)


@dataclass(frozen=True)
class MonthProgress:
    """What a month still waits for, as of an instant."""

    month: ReportingMonth
    as_of: datetime
    not_due: int  # cases without a reply whose deadline had not passed at `as_of` (the 未到期 / still open ones)
    latest_due: datetime | None  # the latest deadline of its counted cases, answered or not (None: no case)

    @property
    def final_at(self) -> datetime:
        return final_at(self.month, self.latest_due)

    @property
    def is_final(self) -> bool:
        return self.as_of >= self.final_at

    @property
    def submissions_open(self) -> bool:
        """Before the cutoff: cases may still arrive."""
        return self.as_of < self.month.ends_at

    @property
    def final_on(self) -> date:
        """The day (Beijing time) it is final at the latest: the day of `final_at`, or the day before when
        that is a midnight (24:00 of a deadline's last day is final by that day's end)."""
        return local_date(self.final_at - timedelta(microseconds=1))


def month_progress(month: ReportingMonth, facts: Iterable[CaseFacts], as_of: datetime) -> MonthProgress:
    """From a month's case facts (other months' are left out), as of `as_of`."""
    as_of = to_utc(as_of)
    not_due = 0
    latest: datetime | None = None
    for f in facts:
        if f.reporting_month != month or f.received_at > as_of:
            continue
        answered = f.answered_at is not None and f.answered_at <= as_of
        if f.withdrawn_at is not None and f.withdrawn_at <= as_of and not answered:
            continue  # withdrawn before any reply: not counted, nothing to wait for
        due_at, _ = f.deadline_as_of(as_of)
        not_due += due_at > as_of and not answered
        latest = due_at if latest is None or due_at > latest else latest
    return MonthProgress(month, as_of, not_due, latest)


@dataclass(frozen=True)
class PeriodProgress:
    """A month's or a quarter's finality: a quarter waits for the latest of its months."""

    months: tuple[MonthProgress, ...]
    counted_not_due: int | None = None  # the cases not due, when counted elsewhere (the dashboard's live figures)

    @property
    def is_final(self) -> bool:
        return all(m.is_final for m in self.months)

    @property
    def not_due(self) -> int:
        if self.counted_not_due is not None:
            return self.counted_not_due
        return sum(m.not_due for m in self.months if not m.is_final)

    @property
    def final_on(self) -> date:
        return max(m.final_on for m in self.months)

    @property
    def submissions_open(self) -> bool:
        return any(m.submissions_open for m in self.months)

    @property
    def cutoff_day(self) -> date:
        return self.months[-1].month.cutoff_day


def period_progress(period: ReportingMonth | Quarter, facts: Iterable[CaseFacts], as_of: datetime) -> PeriodProgress:
    months = period.months if isinstance(period, Quarter) else (period,)
    facts = list(facts)
    return PeriodProgress(tuple(month_progress(m, facts, as_of) for m in months))


# What a supervisor reads (Chinese, as every page and report does); the dashboard and `gateway reports` use these.
PROVISIONAL = "进行中"
_OPEN = "进行中：报送至 {cutoff} 截止（每月20日），{n} 件未到期，最迟 {final_on} 定稿"
_WAITING = "进行中：{n} 件未到期，最迟 {final_on} 定稿"
BEFORE_RECORDS = "已定稿：本网关启用前，无数据"
_DUE_TO_CLOSE = "进行中：期限均已届满，待网关下一次定稿（最迟 {final_on}）"


def provisional_text(progress: PeriodProgress) -> str:
    """Why a period not final yet is provisional, e.g. "进行中：3 件未到期，最迟 2026-08-01 定稿"."""
    values = {"n": progress.not_due, "final_on": progress.final_on.isoformat(), "cutoff": progress.cutoff_day.isoformat()}
    if progress.submissions_open:
        return _OPEN.format(**values)
    if progress.is_final:
        return _DUE_TO_CLOSE.format(**values)
    return _WAITING.format(**values)


def final_text(closed_at: datetime) -> str:
    return f"已定稿（{local_date(closed_at).isoformat()}）"
