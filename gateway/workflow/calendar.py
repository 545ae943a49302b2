"""The working-day calendar (工作日历): which dates are working days in China.

A date is a working day when the State Council's yearly schedule (国务院办公厅关于部分节假日安排的通知)
says so: Monday to Friday, minus public holidays, plus make-up working days on weekends (调休上班).

The schedule is only known for *published* years. For a year with no schedule we fall back to plain
Monday-Friday and callers mark their results *provisional*, so they can be recomputed once the
notice for that year is loaded (R2). The calendar is built from data (`YearSchedule`s), never from
a global: tests build small calendars, and `gateway.workflow.data_files` builds the production one
from the `chinesecalendar` package plus the operator's data file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True)
class YearSchedule:
    """One year's published schedule.

    `holidays` are days off (those falling on a weekend change nothing, but are kept as published);
    `makeup_workdays` are weekend days that are working days (调休).
    """

    year: int
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    source: str = ""

    def __post_init__(self) -> None:
        stray = [d for d in self.holidays | self.makeup_workdays if d.year != self.year]
        if stray:
            raise ValueError(f"schedule {self.year} lists dates of another year: {sorted(stray)}")
        both = self.holidays & self.makeup_workdays
        if both:
            raise ValueError(f"schedule {self.year}: dates both holiday and working day: {sorted(both)}")
        weekday_makeups = [d for d in self.makeup_workdays if d.weekday() < 5]
        if weekday_makeups:
            # A make-up working day on a weekday is a typo in the data, not a rule.
            raise ValueError(f"schedule {self.year}: make-up working days must be weekend days: {sorted(weekday_makeups)}")


def _is_weekday(day: date) -> bool:
    return day.weekday() < 5


@dataclass(frozen=True)
class WorkingDayCalendar:
    """Working days from published yearly schedules; Monday-Friday for unpublished years."""

    schedules: Mapping[int, YearSchedule]
    version: str
    _holidays: frozenset[date] = field(init=False, repr=False, compare=False)
    _makeups: frozenset[date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for year, schedule in self.schedules.items():
            if schedule.year != year:
                raise ValueError(f"schedule for {schedule.year} filed under {year}")
        object.__setattr__(self, "_holidays", frozenset().union(*(s.holidays for s in self.schedules.values())))
        object.__setattr__(self, "_makeups", frozenset().union(*(s.makeup_workdays for s in self.schedules.values())))

    @classmethod
    def from_schedules(cls, schedules: Iterable[YearSchedule], version: str) -> WorkingDayCalendar:
        return cls({s.year: s for s in schedules}, version)

    def is_published(self, year: int) -> bool:
        return year in self.schedules

    def is_working_day(self, day: date) -> bool:
        if day in self._makeups:
            return True
        return _is_weekday(day) and day not in self._holidays

    def published_years(self) -> tuple[int, ...]:
        return tuple(sorted(self.schedules))


@dataclass(frozen=True)
class WorkingDayCount:
    """A date reached by counting working days; provisional if the count crossed an unpublished year."""

    day: date
    provisional: bool


def add_working_days(calendar: WorkingDayCalendar, start: date, n: int) -> WorkingDayCount:
    """The n-th working day after `start`; `start` itself is never counted (R2: day of receipt)."""
    if n < 0:
        raise ValueError(f"number of working days must be >= 0, got {n}")
    day = start
    provisional = False
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if not calendar.is_published(day.year):
            provisional = True
        if calendar.is_working_day(day):
            counted += 1
    return WorkingDayCount(day, provisional)


def subtract_working_days(calendar: WorkingDayCalendar, end: date, n: int) -> WorkingDayCount:
    """The n-th working day before `end` (`end` not counted); mirror of `add_working_days`."""
    if n < 0:
        raise ValueError(f"number of working days must be >= 0, got {n}")
    day = end
    provisional = False
    counted = 0
    while counted < n:
        day -= timedelta(days=1)
        if not calendar.is_published(day.year):
            provisional = True
        if calendar.is_working_day(day):
            counted += 1
    return WorkingDayCount(day, provisional)
