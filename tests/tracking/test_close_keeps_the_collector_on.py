"""Issue 25 (process hygiene): closing a period never switches Python's garbage collector off.

The tick closes months and quarters on the loop that also serves the clerks' requests; a collector
switched off across the close's awaits would be off for every request served meanwhile. Checked on
SQLite and PostgreSQL (`database_url`), with a month of a few thousand cases, from another task that
runs while the close waits on the database.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.clock import FakeClock
from gateway.tracking.tracker import CaseTracker
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import evaluate
from gateway.workflow.deadlines import DeadlineRuleSet

from ..workflow.builders import REGISTRATION, a_query
from ..workflow.conftest import cst

CASES = 3_000


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlCaseStore]:
    engine = create_engine(database_url)
    await create_schema(engine)
    try:
        yield SqlCaseStore(engine)
    finally:
        await engine.dispose()


async def test_the_collector_stays_on_for_other_work_while_a_tick_closes_a_month_of_thousands_of_cases(
    store: SqlCaseStore, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # September 2026 (21 Aug – 20 Sep, the last month of 2026Q3): queries of Tue 1 Sep, due within 10 working days, before the 20th.
    received = cst(2026, 9, 1, 10)
    await store.add_cases([evaluate(a_query(received, rules, real_calendar), received) for _ in range(CASES)])
    tracker = CaseTracker(store, FakeClock(received), real_calendar, rules)
    assert gc.isenabled()

    seen: list[bool] = []
    closing = asyncio.create_task(tracker.close_due_periods(cst(2026, 9, 21, 0, 1)))
    while not closing.done():  # the other work the loop serves meanwhile
        seen.append(gc.isenabled())
        await asyncio.sleep(0)
    closed = await closing

    assert closed == ["2026-09", "2026Q3"]  # the last month of its quarter
    assert (await store.period_snapshot("2026-09")).as_dict()[REGISTRATION].received == CASES  # type: ignore[union-attr]
    assert len(seen) > 1, "the close never let other work run"
    assert all(seen), f"the collector was off during {seen.count(False)} of {len(seen)} turns of the loop"
    assert gc.isenabled()
