"""Revision 0007: cases stored before issue 13's fact columns get them from their JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from sqlalchemy import select

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.workflow_tables import cases as cases_table
from gateway.tracking.serialization import CASE
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.case_facts import facts_of
from gateway.workflow.cases import Case, Direction, open_case, record_feedback
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason

from .test_migrations_backfill import MARCH, REGISTRATION, RESIDENCE, at_baseline_with, cst, url  # noqa: F401 (fixture)


class _OldJson:
    """A case whose stored JSON predates issue 13 (none of its new keys)."""

    def __init__(self, case: Case) -> None:
        self.case = case

    def dump(self) -> str:
        doc = json.loads(CASE.dump_json(self.case))
        for key in ("strike_subject", "direction", "event_date", "learned_on", "submission_due_at"):
            doc.pop(key, None)
        return json.dumps(doc)


async def test_cases_stored_before_revision_0007_get_responsible_sender_strike_and_sender_facts(
    url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar  # noqa: F811
) -> None:
    first = record_feedback(
        open_case("first", CaseKind.QUERY, RESIDENCE, REGISTRATION, "430181199001010011", cst(2), rules, real_calendar),
        cst(3), FeedbackResult.NO_SUCH_PERSON, reason=NoSuchPersonReason.WRONG_ID_NUMBER)
    corrected = open_case("corrected", CaseKind.QUERY, RESIDENCE, REGISTRATION, "430181199001010038", cst(5), rules,
                          real_calendar, resubmits=first)
    back = open_case("back", CaseKind.NOTIFICATION, RESIDENCE, REGISTRATION, "430181199001010011", cst(5), rules,
                     real_calendar, direction=Direction.TO_RESIDENCE, event_date=date(2026, 3, 2))
    cases = [first, corrected, back]
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(at_baseline_with(cases))
        await create_schema(engine)  # baseline → head, 0007 included
        store = SqlCaseStore(engine)
        facts = sorted(await store.facts_in_months([MARCH]), key=lambda f: f.case_id)
        assert facts == sorted((facts_of(c) for c in cases), key=lambda f: f.case_id)
        async with engine.connect() as conn:
            strike = dict((await conn.execute(select(cases_table.c.case_id, cases_table.c.strike_subject))).all())
        assert strike == {"first": "430181199001010011", "corrected": "430181199001010011", "back": "430181199001010011"}
        assert [c.case_id for c in await store.open_cases(RESIDENCE)] == ["back"]
    finally:
        await engine.dispose()


async def test_a_case_whose_json_predates_issue_13_reads_as_sent_to_the_registration_township(
    url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar  # noqa: F811
) -> None:
    old = open_case("old", CaseKind.NOTIFICATION, RESIDENCE, REGISTRATION, "430181199001010011", cst(5), rules, real_calendar)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(at_baseline_with([old]))
            await conn.execute(cases_table.update().values(data=_OldJson(old).dump()))
        await create_schema(engine)
        [facts] = await SqlCaseStore(engine).facts_in_months([MARCH])
        assert facts == facts_of(replace(old))
        assert (facts.responsible_township, facts.sender_township, facts.submission_due_at) == (REGISTRATION, RESIDENCE, None)
    finally:
        await engine.dispose()
