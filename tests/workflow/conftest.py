"""Shared fixtures: the real calendar data (package + shipped file), the shipped rule-set, a fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, load_calendar, load_deadline_rules
from gateway.workflow.deadlines import DeadlineRuleSet
from gateway.workflow.instants import SHANGHAI


def cst(y: int, m: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    """A wall-clock time in China Standard Time, as the UTC instant the domain stores."""
    return datetime(y, m, d, h, mi, s, us, tzinfo=SHANGHAI).astimezone(timezone.utc)


@dataclass
class FakeClock:
    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now

    def set(self, instant: datetime) -> datetime:
        self.now = instant
        return self.now


@pytest.fixture(scope="session")
def real_calendar() -> WorkingDayCalendar:
    return load_calendar(DEFAULT_CALENDAR_FILE)


@pytest.fixture(scope="session")
def rules() -> DeadlineRuleSet:
    return load_deadline_rules(DEFAULT_DEADLINES_FILE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(cst(2026, 3, 2, 9))
