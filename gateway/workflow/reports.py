"""The reports the seeds ask for, from the stored cases of a closed period.

* **Monthly summary table** (《流动人口计划生育情况汇总表》, seed 000: 乡(镇)级…实行一月一报告制度),
  one per township, for a reporting month (R1: 21st of the month before to the 20th). The seed names
  the table, not its columns; its due day is the month's 20th, the cutoff of the month's queries and
  feedback (seed 000 工作制度 七: 每月20日为当月提交查询和反馈信息截止日). Replies due after the 20th
  are still counted in it (工作制度 二: 每个月21日到下个月20日前…反馈…上个月…信息): the table is
  provisional until the month is final (gateway.workflow.finality), and says so.
* **Half-year and annual reports** (seed 002, 范文篇10 第二十七–二十八条): 省表二 (人口(暂住)自然变动
  及女性初婚情况统计表) and 省表三 (已婚育龄夫妇(暂住)节育情况统计表) half-yearly and yearly, 省表五
  (流动人口计划生育管理和服务情况统计表) yearly; township, county and city send them by the 13th, 16th
  and 20th of April (half-year) or October (annual). The seeds name these tables but not their
  columns; 表二 and 表三 count births, first marriages and contraception, which the exchange's cases
  do not hold. What the gateway can honestly give is the exchange part — the figures of 省表五's
  管理和服务 that the exchange produces — and the events ①–④ notified through it.

Which period, and why (issue 23):

* **Events ①–④** (notification kinds 1 birth, 2 operation, 3 contraception due, 4 pregnancy; seed 002
  范文篇10 第二十四条: 统计年度内) are counted by the **date of the event**, in the statistical year:
  1 October – 30 September (seed 000 登记制度 七: 计划生育统计期限为上年10月1日0时至本年9月30日24时);
  the half-year is 1 October – 31 March (seed 002 范文篇4 第十六条(五): 年中报表统计上年10月1日到当年
  3月31日情况, 年终报表统计上年10月1日到当年9月30日的情况). A birth of 27 September notified on 10 October
  is in the year that ended on 30 September.
* **Exchange figures** (queries, feedback, notifications answered) are counted by **reporting month**,
  the exchange's own period (工作制度 七): a half-year or year takes the reporting months whose cutoff
  (the 20th) falls inside it, so the half-year of statistical year Y is the months 10/Y-1 … 3/Y
  (21 September – 20 March, the quarters Q4 of Y-1 and Q1 of Y) and the year 10/Y-1 … 9/Y. The report
  prints this mapping. Closed quarters' frozen accounting is summed (reproducible from the archive,
  as the scores); a quarter not final yet is counted as of the moment and the report says it is
  provisional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from gateway.workflow.instants import end_of_local_day, to_utc
from gateway.workflow.periods import Quarter, ReportingMonth


class ReportKind(StrEnum):
    MONTHLY = "monthly"
    HALF_YEAR = "half-year"
    ANNUAL = "annual"


@dataclass(frozen=True)
class DueDates:
    township: date
    county: date
    city: date


@dataclass(frozen=True)
class ReportPeriod:
    kind: ReportKind
    label: str
    months: tuple[ReportingMonth, ...]
    quarters: tuple[Quarter, ...]  # empty for a monthly table
    title: str
    due: DueDates | None
    source: str
    # Events ①–④ are counted by their date in these days (a half-year or year); None for a monthly table.
    events_from: date | None = None
    events_to: date | None = None

    @property
    def due_day(self) -> date:
        """The monthly table's due day: its month's 20th (工作制度 七)."""
        return self.months[-1].cutoff_day

    def events_as_of(self, now: datetime) -> datetime:
        """The instant events ①–④ are counted at: `now`, but no later than the end of the township's due
        day. An event of the period's last days is notified within 5 working days of being learned of
        (第二十四条), after the exchange months have closed, and the table due by the 13th must hold it;
        one notified after the table was due changes no final report."""
        if self.due is None:
            return now
        # The last instant of the due day: a notification at 00:00 of the next day is after it.
        return min(to_utc(now), end_of_local_day(self.due.township) - timedelta(microseconds=1))

    def rules(self) -> list[str]:
        """The period rule and its mapping, as each report prints it."""
        first, last = self.months[0], self.months[-1]
        exchange = (f"exchange figures by reporting month: {first} … {last} "
                    f"({first.first_day.isoformat()} – {last.cutoff_day.isoformat()})")
        if self.events_from is None or self.events_to is None:
            return [exchange + "; 工作制度 七 (seed 000): 每月20日为当月提交查询和反馈信息截止日"]
        what = "half-year" if self.kind is ReportKind.HALF_YEAR else "year"
        return [
            f"events ①–④ (births, operations, contraception due, pregnancies) by the date of the event: "
            f"{self.events_from.isoformat()} – {self.events_to.isoformat()}, the statistical {what} "
            "(seed 000 登记制度 七: 计划生育统计期限为上年10月1日0时至本年9月30日24时; seed 002 范文篇4 第十六条(五): "
            "年中报表统计上年10月1日到当年3月31日情况)",
            exchange + f": the reporting months whose cutoff (the 20th) falls in the {what} (工作制度 七)",
        ]


_HALF = re.compile(r"^(\d{4})H1$")
_YEAR = re.compile(r"^(\d{4})$")

MONTHLY_TITLE = "流动人口计划生育情况汇总表 (monthly summary table, township level)"
HALF_YEAR_TITLE = "半年报: 省表二、省表三 (exchange part; their own columns are not in the cases)"
ANNUAL_TITLE = "全年报: 省表五 流动人口计划生育管理和服务情况统计表 (exchange part), with 省表二、省表三"


def report_period(kind: ReportKind, text: str) -> ReportPeriod:
    """The period a report covers: 2026-03 (monthly), 2026H1 (half-year of statistical year 2026:
    October 2025 – March 2026), 2026 (statistical year 2026: October 2025 – September 2026)."""
    text = text.strip().upper()
    if kind is ReportKind.MONTHLY:
        month = ReportingMonth.parse(text)
        return ReportPeriod(kind, str(month), (month,), (), MONTHLY_TITLE, None,
                            "seed 000: 乡(镇)级《流动人口计划生育情况汇总表》实行一月一报告制度; 工作制度 七: 每月20日为当月"
                            "提交查询和反馈信息截止日")
    pattern = _HALF if kind is ReportKind.HALF_YEAR else _YEAR
    found = pattern.match(text)
    if not found:
        example = "2026H1" if kind is ReportKind.HALF_YEAR else "2026"
        raise ValueError(f"a {kind} period is a statistical year like {example}, got {text!r}")
    year = int(found.group(1))
    quarters = (Quarter(year - 1, 4), Quarter(year, 1))
    if kind is ReportKind.ANNUAL:
        quarters += (Quarter(year, 2), Quarter(year, 3))
    months = tuple(m for q in quarters for m in q.months)
    due_month = 4 if kind is ReportKind.HALF_YEAR else 10
    due = DueDates(date(year, due_month, 13), date(year, due_month, 16), date(year, due_month, 20))
    title = HALF_YEAR_TITLE if kind is ReportKind.HALF_YEAR else ANNUAL_TITLE
    source = ("seed 002 范文篇10 第二十七条 (省表二/三/五), 第二十八条: 表二和表三为半年、全年报表,表五为全年报表;"
              " 镇、县、市分别于每年4月(半年报)或10月(全年报)的13、16、20日前逐级上报")
    events_to = date(year, 3, 31) if kind is ReportKind.HALF_YEAR else date(year, 9, 30)
    return ReportPeriod(kind, f"{year}H1" if kind is ReportKind.HALF_YEAR else str(year), months, quarters, title, due,
                        source, date(year - 1, 10, 1), events_to)
