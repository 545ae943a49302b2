"""Reporting months (R1) and exchange cycles, i.e. quarters (R5).

* The 20th of each month is the cutoff (截止日) for that month's queries and feedback (rule 七).
  Reporting month M runs from 00:00 CST on the 21st of month M-1 up to 24:00 CST on the 20th of M.
  So 2025-12-25 (CST) belongs to reporting month 2026-01.
* A quarter is three reporting months (rule 七: 每个季度为一个…工作周期):
  Q1 = 21 Dec - 20 Mar, Q2 = 21 Mar - 20 Jun, Q3 = 21 Jun - 20 Sep, Q4 = 21 Sep - 20 Dec.
* A message belongs to the period of the instant the gateway accepted it, read in CST.
* The statistical year (统计年度) runs from 1 October to 30 September (seed 000, 登记制度 七:
  计划生育统计期限为上年10月1日0时至本年9月30日24时) and is named by the year it ends in: statistical
  year 2026 is 1 Oct 2025 – 30 Sep 2026, the convention of the reports (2026H1 = October 2025 – March
  2026). Notifications ①–④ count in the statistical year of the event's own date (seed 002, 第二十四条).

Period bounds are half-open [starts_at, ends_at): `ends_at` is 00:00 CST on the 21st, so an instant
at exactly 24:00 on the 20th already belongs to the next month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from gateway.workflow.instants import local_date, start_of_local_day

CUTOFF_DAY = 20  # rule 七: 每月20日为当月提交查询和反馈信息截止日
STATISTICAL_YEAR_FIRST_MONTH = 10  # seed 000 登记制度 七: 上年10月1日0时至本年9月30日24时

# The years a period asked for at an edge (a dashboard, a report, an API parameter) may lie in: the
# exchange began long after 2000, and a year such as 0001 would make date arithmetic fail (year 0).
FIRST_YEAR, LAST_YEAR = 2000, 2099

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class ReportingMonth:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1..12, got {self.month}")

    @classmethod
    def parse(cls, text: str) -> ReportingMonth:
        m = _MONTH_RE.match(text.strip())
        if not m:
            raise ValueError(f"reporting month must look like 2026-01, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def __str__(self) -> str:
        return self.label

    def previous(self) -> ReportingMonth:
        return ReportingMonth(self.year - 1, 12) if self.month == 1 else ReportingMonth(self.year, self.month - 1)

    def next(self) -> ReportingMonth:
        return ReportingMonth(self.year + 1, 1) if self.month == 12 else ReportingMonth(self.year, self.month + 1)

    @property
    def first_day(self) -> date:
        prev = self.previous()
        return date(prev.year, prev.month, CUTOFF_DAY + 1)

    @property
    def cutoff_day(self) -> date:
        return date(self.year, self.month, CUTOFF_DAY)

    @property
    def starts_at(self) -> datetime:
        return start_of_local_day(self.first_day)

    @property
    def ends_at(self) -> datetime:
        """Exclusive end: 00:00 CST on the 21st (= 24:00 on the 20th), in UTC."""
        return self.next().starts_at

    @property
    def quarter(self) -> Quarter:
        return Quarter(self.year, (self.month - 1) // 3 + 1)

    def contains(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.ends_at


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    q: int

    def __post_init__(self) -> None:
        if not 1 <= self.q <= 4:
            raise ValueError(f"quarter must be 1..4, got {self.q}")

    @classmethod
    def parse(cls, text: str) -> Quarter:
        m = _QUARTER_RE.match(text.strip().upper())
        if not m:
            raise ValueError(f"quarter must look like 2026Q1, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def label(self) -> str:
        return f"{self.year:04d}Q{self.q}"

    def __str__(self) -> str:
        return self.label

    @property
    def months(self) -> tuple[ReportingMonth, ReportingMonth, ReportingMonth]:
        first = 3 * (self.q - 1) + 1
        return (ReportingMonth(self.year, first), ReportingMonth(self.year, first + 1), ReportingMonth(self.year, first + 2))

    @property
    def starts_at(self) -> datetime:
        return self.months[0].starts_at

    @property
    def ends_at(self) -> datetime:
        return self.months[-1].ends_at

    def contains(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.ends_at


def reporting_month_of(instant: datetime) -> ReportingMonth:
    """The reporting month an instant belongs to, by its CST date."""
    day = local_date(instant)
    month = ReportingMonth(day.year, day.month)
    return month.next() if day.day > CUTOFF_DAY else month


def quarter_of(instant: datetime) -> Quarter:
    return reporting_month_of(instant).quarter


def statistical_year_of(day: date) -> int:
    """The statistical year holding `day`, named by the year in which it ends:
    2026-09-30 → 2026, 2026-10-01 → 2027."""
    return day.year + 1 if day.month >= STATISTICAL_YEAR_FIRST_MONTH else day.year


def statistical_year_bounds(year: int) -> tuple[date, date]:
    """First and last day of statistical year `year` (1 October of year-1 to 30 September of year)."""
    return date(year - 1, STATISTICAL_YEAR_FIRST_MONTH, 1), date(year, STATISTICAL_YEAR_FIRST_MONTH - 1, 30)


_P = TypeVar("_P", "ReportingMonth", "Quarter")


def served(period: _P) -> _P:
    """The period itself when its year is one the gateway serves; ValueError with the reason otherwise."""
    if not FIRST_YEAR <= period.year <= LAST_YEAR:
        raise ValueError(f"the year must be {FIRST_YEAR}–{LAST_YEAR}, got {period.year:04d}")
    return period
