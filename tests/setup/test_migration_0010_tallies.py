"""Revision 0010: cases stored before the dashboard's tallies existed are counted in them, and every later
write of a case is logged (the triggers come with the revision, before the old cases are logged)."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy.engine import Connection

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.migrate import alembic_config, current_revision, head_revision
from gateway.adapters.sql.tally_store import TallyStore
from gateway.workflow.accounting import account, close_month
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import evaluate, record_feedback
from gateway.workflow.deadlines import DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult

from ..workflow.builders import a_query
from ..workflow.conftest import cst
from ..workflow.test_accounting_fast_path import Q1, generated_quarter
from .test_migrations_backfill import url  # noqa: F401 (fixture: SQLite and PostgreSQL)


def at_0009(conn: Connection) -> None:
    command.upgrade(alembic_config(conn), "0009")


async def test_cases_stored_before_revision_0010_are_in_the_tallies_and_later_writes_are_logged(
    url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar  # noqa: F811
) -> None:
    cases = generated_quarter(3, rules, real_calendar)
    january = Q1.months[0]
    closed_at = january.ends_at + timedelta(minutes=5)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(at_0009)
        store = SqlCaseStore(engine)
        # The cases table as it was at 0009: the store's row without the columns of later revisions (0011).
        from sqlalchemy import column, insert, table

        from gateway.adapters.sql.case_store import case_values
        from gateway.adapters.sql.workflow_tables import cases as cases_table

        later = {"notification_kind", "event_date"}
        table_at_0009 = table("cases", *(column(c.name, c.type) for c in cases_table.c if c.name not in later))
        async with engine.begin() as conn:
            await conn.execute(insert(table_at_0009), [{k: v for k, v in case_values(c).items() if k not in later} for c in cases])
        await store.close_month(close_month(cases, january, closed_at))

        await create_schema(engine)  # 0009 → head

        assert await current_revision(engine) == head_revision()
        tallies = TallyStore(engine)
        now = cst(2026, 5, 1)  # after every fact of the generated quarter
        closures = await store.month_closures()
        assert await tallies.backlog() == len(cases)
        assert await tallies.counts("43", Q1.months, now) == account(cases, Q1, now, closures)  # read from the log
        folded = await tallies.fold(now)
        # Every change (rules "3": an answer is judged by its deadline, none waits for a close).
        assert folded == len(cases)
        assert len(cases) / 2 < folded and folded + await tallies.backlog() == len(cases)
        assert await tallies.counts("43", Q1.months, now) == account(cases, Q1, now, closures)  # from the tallies
        # A case written after the revision is logged by its triggers.
        late = evaluate(a_query(cst(2026, 3, 2, 9), rules, real_calendar, case_id="after-0010"), cst(2026, 3, 2, 9))
        await store.add_cases([late])
        answered = record_feedback(evaluate(late, cst(2026, 3, 3)), cst(2026, 3, 3), FeedbackResult.FOUND)
        assert await store.save_answer(answered, None)
        assert await tallies.backlog() == len(cases) - folded + 1 + 2
        assert await tallies.counts("43", Q1.months, now) == account([*cases, answered], Q1, now, closures)
    finally:
        await engine.dispose()
