"""Micro-benchmarks of the pure workflow domain (the PostgreSQL-backed one comes later).

Run: pytest bench/bench_workflow.py --benchmark-only
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.workflow.accounting import Level, account, roll_up
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, open_case, record_feedback
from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, load_calendar, load_deadline_rules
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet, deadline_for
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.periods import Quarter


@pytest.fixture(scope="module")
def calendar() -> WorkingDayCalendar:
    return load_calendar(DEFAULT_CALENDAR_FILE)


@pytest.fixture(scope="module")
def rules() -> DeadlineRuleSet:
    return load_deadline_rules(DEFAULT_DEADLINES_FILE)


@pytest.fixture(scope="module")
def cases(calendar: WorkingDayCalendar, rules: DeadlineRuleSet) -> list[Case]:
    start = datetime(2025, 12, 21, 1, tzinfo=timezone.utc)
    out = []
    for i in range(20_000):
        received = start + timedelta(minutes=6 * i)
        case = open_case(f"q{i}", CaseKind.QUERY, "440106001", f"43{i % 50:04d}{i % 7:03d}", "X", received, rules, calendar)
        if i % 3:
            case = record_feedback(case, received + timedelta(days=i % 20), FeedbackResult.FOUND)
        out.append(case)
    return out


def test_bench_deadline(benchmark, calendar: WorkingDayCalendar, rules: DeadlineRuleSet) -> None:  # type: ignore[no-untyped-def]
    received = datetime(2026, 2, 13, 8, tzinfo=timezone.utc)
    result = benchmark(deadline_for, CaseKind.QUERY, received, rules, calendar)
    assert result.working_days == 10


def test_bench_quarter_accounting_20k_cases(benchmark, cases: list[Case]) -> None:  # type: ignore[no-untyped-def]
    as_of = datetime(2026, 3, 25, tzinfo=timezone.utc)
    rows = benchmark(lambda: roll_up(account(cases, Quarter(2026, 1), as_of), Level.PROVINCE))
    assert sum(c.received for c in rows.values()) > 0
