"""Revisions 0002 and 0003: cases stored before the accounting facts and the next-change instant
were columns get them from their JSON.

The rows are written as the baseline's schema held them (the JSON and the filter columns only),
then the database is upgraded; the columns must then say exactly what the cases say.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.store import _utc
from gateway.adapters.sql.workflow_tables import cases as cases_table
from gateway.adapters.sql.migrate import BASELINE, alembic_config, current_revision, head_revision
from gateway.tracking.serialization import CASE
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.case_facts import facts_of
from gateway.workflow.cases import (
    Case,
    evaluate,
    mark_reminder_sent,
    open_case,
)
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.instants import SHANGHAI
from gateway.workflow.periods import ReportingMonth

from ..workflow.builders import cases_of_every_fact

MARCH = ReportingMonth(2026, 3)
REGISTRATION, RESIDENCE = "430181001", "440106001"
POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.database)


def cst(d: int, h: int = 9) -> datetime:
    return datetime(2026, 3, d, h, tzinfo=SHANGHAI).astimezone(timezone.utc)


def at_baseline_with(cases: list[Case]):  # type: ignore[no-untyped-def]
    def build(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), BASELINE)
        for case in cases:
            conn.execute(
                text("INSERT INTO cases (case_id, kind, residence_township, registration_township, subject, received_at,"
                     " reporting_month, state, due_at, data) VALUES (:id, :kind, :res, :reg, :subject, :received,"
                     " :month, :state, :due, :data)"),
                {"id": case.case_id, "kind": case.kind.value, "res": case.residence_township,
                 "reg": case.registration_township, "subject": case.citizen_id, "received": case.received_at,
                 "month": str(case.reporting_month), "state": case.state.value, "due": case.deadline.due_at,
                 "data": CASE.dump_json(case).decode()},
            )
    return build


@pytest.fixture(params=["sqlite", POSTGRESQL])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("postgres_url")


async def test_cases_stored_before_the_facts_were_columns_get_their_facts_from_their_json(
    url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    cases = cases_of_every_fact(rules, real_calendar, REGISTRATION)
    assert any(c.deadline_changes for c in cases) and any(c.missed_management for c in cases)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(at_baseline_with(cases))

        await create_schema(engine)

        assert await current_revision(engine) == head_revision()
        facts = sorted(await SqlCaseStore(engine).facts_in_months([MARCH]), key=lambda f: f.case_id)
        assert facts == sorted((facts_of(c) for c in cases if c.reporting_month == MARCH), key=lambda f: f.case_id)
    finally:
        await engine.dispose()


async def test_open_cases_stored_before_revision_0003_get_their_next_change_from_their_json(
    url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    fresh = open_case("fresh", CaseKind.QUERY, RESIDENCE, REGISTRATION, "430181199001010011", cst(2), rules, real_calendar)
    due_soon = mark_reminder_sent(evaluate(fresh, fresh.due_soon.starts_at), "due_soon")
    overdue = mark_reminder_sent(evaluate(fresh, fresh.deadline.due_at), "overdue")
    cases = [fresh, replace(due_soon, case_id="due-soon"), replace(overdue, case_id="overdue"),
             *cases_of_every_fact(rules, real_calendar, REGISTRATION)]
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(at_baseline_with(cases))

        await create_schema(engine)

        async with engine.connect() as conn:
            stored = dict((await conn.execute(select(cases_table.c.case_id, cases_table.c.next_change_at))).all())
        assert {case_id: _utc(at) for case_id, at in stored.items()} == {c.case_id: c.next_change_at for c in cases}
        assert stored["overdue"] is None and stored["found"] is None
        assert _utc(stored["due-soon"]) == fresh.deadline.due_at
    finally:
        await engine.dispose()
