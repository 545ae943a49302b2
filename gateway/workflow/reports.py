"""The reports the seeds ask for, from the stored cases of a closed period.

* **Monthly summary table** (《流动人口计划生育情况汇总表》, seed 000: 乡(镇)级…实行一月一报告制度),
  one per township, for a reporting month (R1: 21st of the month before to the 20th). The seed names
  the table, not its columns, and gives no due day for the township's table (the villages' tables
  are due 每月月底前): it is final when its month closes.
* **Half-year and annual reports** (seed 002, 范文篇10 第二十七–二十八条): 省表二 (人口(暂住)自然变动
  及女性初婚情况统计表) and 省表三 (已婚育龄夫妇(暂住)节育情况统计表) half-yearly and yearly, 省表五
  (流动人口计划生育管理和服务情况统计表) yearly; township, county and city send them by the 13th, 16th
  and 20th of April (half-year) or October (annual). The statistical year runs from 1 October to
  30 September (seed 000, 登记制度 七), so the half-year is October–March. The seeds name these tables
  but not their columns; 表二 and 表三 count births, first marriages and contraception, which the
  exchange's cases do not hold. What the gateway can honestly give is the exchange part — the
  figures of 省表五's 管理和服务 that the exchange produces — per township and for the region.

Periods are counted in the exchange's reporting months: the half-year of statistical year Y is the
months 10/Y-1 … 3/Y (21 September – 20 March), i.e. the quarters Q4 of Y-1 and Q1 of Y; the year is
Q4 of Y-1 and Q1–Q3 of Y. Those quarters' frozen accounting is summed, so a report is the sum of
figures already closed and reproducible from the archive like the scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

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
                            "seed 000: 乡(镇)级《流动人口计划生育情况汇总表》实行一月一报告制度")
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
    return ReportPeriod(kind, f"{year}H1" if kind is ReportKind.HALF_YEAR else str(year), months, quarters, title, due, source)
