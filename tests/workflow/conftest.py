"""Workflow fixtures: a fake clock and CST instants (the real calendar and rule-set are in tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(cst(2026, 3, 2, 9))
