"""The case store on a real database: a county's overdue list, and bulk reads in batches.

Each test runs on the embedded default (SQLite) and on PostgreSQL (`database_url`); the fake store
must give the same answers, since the tracker's tests run on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, text

from gateway.adapters.fake_case_store import FakeCaseStore
from gateway.adapters.sql import case_store as case_store_module
from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.workflow_tables import OPEN_STATE_VALUES
from gateway.workflow.accounting import close_month
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.case_facts import facts_of
from gateway.workflow.cases import (
    OPEN_STATES,
    Case,
    evaluate,
    mark_reminder_sent,
    open_case,
    record_feedback,
    withdraw,
)
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.instants import SHANGHAI
from gateway.workflow.periods import ReportingMonth
from gateway.workflow.reminders import reminders_due

from ..workflow.builders import cases_of_every_fact

pytestmark = pytest.mark.database

LIUYANG = "430181"  # a county: 浏阳市
IN_LIUYANG = ("430181001", "430181102")
NEXT_COUNTY = "430182001"  # 宁乡市, one code further
RESIDENCE = "440106001"
MARCH = ReportingMonth(2026, 3)


def cst(y: int, m: int, d: int, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=SHANGHAI).astimezone(timezone.utc)


NOW = cst(2026, 3, 20, 21)  # the supervisor's evening on the cutoff day


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlCaseStore]:
    engine = create_engine(database_url)
    await create_schema(engine)
    yield SqlCaseStore(engine)
    await engine.dispose()


class Cases:
    """Queries received at a given CST time by a given township, with readable ids."""

    def __init__(self, rules: DeadlineRuleSet, calendar: WorkingDayCalendar) -> None:
        self.rules, self.calendar = rules, calendar

    def query(self, case_id: str, received: datetime, township: str = IN_LIUYANG[0]) -> Case:
        return open_case(case_id, CaseKind.QUERY, RESIDENCE, township, "430181199001010011", received,
                         self.rules, self.calendar)


@pytest.fixture
def a(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> Cases:
    return Cases(rules, real_calendar)


def overdue_world(a: Cases) -> tuple[list[Case], list[str]]:
    """Cases around the rule, and the ids of those the county's March list must show, in order."""
    cases = [
        evaluate(a.query("overdue", cst(2026, 2, 26, 9)), NOW),  # due 24:00 12 March, stored as overdue
        # Stored as awaiting reply (no tick has run since), but overdue by its deadline, which is earlier:
        a.query("also-overdue", cst(2026, 2, 24, 9), IN_LIUYANG[1]),
        a.query("not-yet-due", cst(2026, 3, 16, 9)),
        record_feedback(a.query("answered-late", cst(2026, 2, 25, 9)), cst(2026, 3, 18, 9), FeedbackResult.FOUND),
        withdraw(a.query("withdrawn", cst(2026, 2, 25, 10)), cst(2026, 2, 27, 9)),
        a.query("other-county", cst(2026, 2, 26, 9), NEXT_COUNTY),
        a.query("february", cst(2026, 2, 10, 9)),  # overdue, but of reporting month 2026-02
    ]
    return cases, ["also-overdue", "overdue"]


async def test_a_county_s_overdue_list_is_its_open_cases_of_the_month_past_their_deadline(store: SqlCaseStore, a: Cases) -> None:
    cases, expected = overdue_world(a)
    for case in cases:
        await store.add_case(case)
    listed = await store.overdue_cases(LIUYANG, MARCH, NOW)
    assert [c.case_id for c in listed] == expected
    assert listed[0] == next(c for c in cases if c.case_id == expected[0])  # whole cases, as stored


async def test_a_case_is_overdue_from_24_00_of_its_last_working_day_on(store: SqlCaseStore, a: Cases) -> None:
    case = a.query("q", cst(2026, 3, 2, 9))
    await store.add_case(case)
    due = case.deadline.due_at
    assert await store.overdue_cases(LIUYANG, MARCH, due - timedelta(microseconds=1)) == []
    assert [c.case_id for c in await store.overdue_cases(LIUYANG, MARCH, due)] == ["q"]


async def test_the_region_may_be_a_township_a_county_a_city_or_the_province(store: SqlCaseStore, a: Cases) -> None:
    await store.add_case(a.query("q", cst(2026, 2, 26, 9), IN_LIUYANG[1]))
    for region in (IN_LIUYANG[1], LIUYANG, "4301", "43"):
        assert [c.case_id for c in await store.overdue_cases(region, MARCH, NOW)] == ["q"]
    assert await store.overdue_cases(IN_LIUYANG[0], MARCH, NOW) == []
    with pytest.raises(ValueError, match="division code"):
        await store.overdue_cases("43018", MARCH, NOW)


async def test_the_fake_store_lists_the_same_cases(store: SqlCaseStore, a: Cases) -> None:
    cases, expected = overdue_world(a)
    fake = FakeCaseStore()
    for case in cases:
        await store.add_case(case)
        await fake.add_case(case)
    for region in (LIUYANG, "43", NEXT_COUNTY):
        from_sql = [c.case_id for c in await store.overdue_cases(region, MARCH, NOW)]
        assert from_sql == [c.case_id for c in await fake.overdue_cases(region, MARCH, NOW)]


async def test_bulk_reads_return_every_case_across_batches(store: SqlCaseStore, a: Cases, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(case_store_module, "_BATCH", 3)
    start = cst(2026, 2, 23, 9)
    cases = [a.query(f"q{i:02d}", start + timedelta(hours=i), IN_LIUYANG[i % 2]) for i in range(10)]
    for case in cases:
        await store.add_case(case)
    loaded = await store.cases_in_months([MARCH])
    assert sorted(loaded, key=lambda c: c.case_id) == cases
    assert len(await store.open_cases()) == 10


async def test_postgresql_answers_the_overdue_list_from_the_partial_index_even_with_a_generic_plan(
    postgres_url: str, a: Cases
) -> None:
    engine = create_engine(postgres_url)
    await create_schema(engine)
    store = SqlCaseStore(engine)
    statements: list[tuple[str, tuple[object, ...]]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "due_at <=" in statement:
            statements.append((statement, tuple(parameters)))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await store.add_case(a.query("q", cst(2026, 2, 26, 9)))
        await store.overdue_cases(LIUYANG, MARCH, NOW)
        (statement, parameters), = statements
        values = ", ".join(f"'{p.isoformat() if isinstance(p, datetime) else p}'" for p in parameters)
        async with engine.connect() as conn:
            # The plan PostgreSQL caches after a few runs of a prepared statement: parameters unknown.
            await conn.execute(text("SET plan_cache_mode = force_generic_plan"))
            await conn.execute(text("SET enable_seqscan = off"))  # a one-row table would be scanned otherwise
            await conn.exec_driver_sql(f"PREPARE overdue AS {statement}")
            plan = "\n".join(r[0] for r in (await conn.exec_driver_sql(f"EXPLAIN EXECUTE overdue({values})")).all())
        assert "ix_cases_overdue" in plan, plan
    finally:
        await engine.dispose()


def test_the_states_indexed_as_open_are_the_domain_s_open_states() -> None:
    assert set(OPEN_STATE_VALUES) == set(OPEN_STATES)


# --- the facts a close reads --------------------------------------------------------------------

def closing_world(a: Cases) -> list[Case]:
    return cases_of_every_fact(a.rules, a.calendar, registration=IN_LIUYANG[0])


async def test_the_facts_a_close_reads_are_those_of_the_stored_cases(store: SqlCaseStore, a: Cases) -> None:
    cases = closing_world(a)
    assert any(c.deadline_changes for c in cases) and any(c.missed_management for c in cases)
    for case in cases:
        await store.add_case(case)
    facts = sorted(await store.facts_in_months([MARCH]), key=lambda f: f.case_id)
    assert facts == sorted((facts_of(c) for c in cases if c.reporting_month == MARCH), key=lambda f: f.case_id)
    assert all(f.received_at.tzinfo is not None for f in facts)


async def test_the_facts_follow_a_case_through_its_answer(store: SqlCaseStore, a: Cases) -> None:
    case = a.query("q", cst(2026, 3, 2, 9))
    await store.add_case(case)
    answered = record_feedback(case, cst(2026, 3, 4, 9), FeedbackResult.FOUND)
    await store.save_answer(answered, None)
    (facts,) = await store.facts_in_months([MARCH])
    assert facts.answered_at == cst(2026, 3, 4, 9) and facts.result is FeedbackResult.FOUND


async def test_a_month_closed_from_the_facts_equals_one_closed_from_the_whole_cases(store: SqlCaseStore, a: Cases) -> None:
    for case in closing_world(a):
        await store.add_case(case)
    closed_at = MARCH.ends_at
    from_facts = close_month(await store.facts_in_months([MARCH]), MARCH, closed_at)
    assert from_facts == close_month(await store.cases_in_months([MARCH]), MARCH, closed_at)
    assert from_facts.as_dict()[IN_LIUYANG[0]].missed_management == 1
    assert from_facts.calendar_versions == tuple(sorted({a.calendar.version, "test-moved"}))


async def test_the_audit_derives_the_same_facts_from_the_whole_stored_cases(store: SqlCaseStore, a: Cases) -> None:
    for case in closing_world(a):
        await store.add_case(case)
    from_columns = sorted(await store.facts_in_months([MARCH]), key=lambda f: f.case_id)
    assert sorted(await store.facts_from_whole_cases([MARCH]), key=lambda f: f.case_id) == from_columns
    assert len(from_columns) == 7


async def test_a_tick_reads_only_the_open_cases_whose_next_change_has_come(store: SqlCaseStore, a: Cases) -> None:
    ripe = a.query("ripe", cst(2026, 2, 26, 9))  # its due-soon window opened before NOW
    later = a.query("later", cst(2026, 3, 19, 9))
    answered = record_feedback(a.query("answered", cst(2026, 2, 26, 10)), cst(2026, 3, 2), FeedbackResult.FOUND)
    for case in (ripe, later, answered):
        await store.add_case(case)
    assert ripe.next_change_at <= NOW < later.next_change_at  # type: ignore[operator]
    assert [c.case_id for c in await store.cases_to_advance(NOW)] == ["ripe"]
    assert {c.case_id for c in await store.cases_to_advance(later.next_change_at)} == {"ripe", "later"}  # type: ignore[arg-type]


async def test_a_tick_stores_the_cases_it_moved_with_the_reminders_it_sent(store: SqlCaseStore, a: Cases) -> None:
    case = a.query("q", cst(2026, 2, 26, 9))
    await store.add_case(case)
    (reminder,) = reminders_due([evaluate(case, NOW)], NOW)
    moved = mark_reminder_sent(evaluate(case, NOW), reminder.kind.value)

    await store.save_advanced([moved], [reminder], NOW)

    assert await store.get_case("q") == moved
    assert await store.reminders(IN_LIUYANG[0]) == [(NOW, reminder)]
    assert await store.cases_to_advance(NOW) == []  # nothing left to do until its deadline


async def test_a_reply_reads_its_case_the_person_s_ledger_and_her_other_cases_in_one_go(store: SqlCaseStore, a: Cases) -> None:
    """answer_context: the case, its strike ledger's version, and every case of its strike key — the
    same as reading them one by one, on both databases and on the fake store."""
    mine = [a.query(f"q{i}", cst(2026, 3, 2 + i, 9)) for i in range(3)]
    someone_else = open_case("other-person", CaseKind.QUERY, RESIDENCE, IN_LIUYANG[0], "430181199202020022",
                             cst(2026, 3, 3, 9), a.rules, a.calendar)
    other_township = a.query("other-township", cst(2026, 3, 3, 9), IN_LIUYANG[1])
    await store.add_cases([*mine, someone_else, other_township])
    fake = FakeCaseStore()
    await fake.add_cases([*mine, someone_else, other_township])
    answered = record_feedback(mine[0], cst(2026, 3, 10, 9), FeedbackResult.NO_SUCH_PERSON,
                               reason=NoSuchPersonReason.WRONG_ADDRESS)
    for s in (store, fake):
        assert await s.save_answer(answered, None, ledger_version=0)

    for s in (store, fake):
        case, version, of_key = await s.answer_context("q1")
        assert case == mine[1]
        assert version == 1 == await s.ledger_version(mine[1].strike_key)
        assert sorted(c.case_id for c in of_key) == ["q0", "q1", "q2"]
        assert {c.case_id: c for c in of_key}["q0"] == answered
        assert await s.answer_context("no-such-case") == (None, 0, [])


async def test_replies_saved_together_each_get_their_own_verdict(store: SqlCaseStore, a: Cases) -> None:
    """save_answers: one transaction for a group of replies; each is written, refused as answered
    already, or refused because the person's ledger moved — and one refusal never undoes another's
    write. The fake store gives the same verdicts."""
    first = a.query("first", cst(2026, 3, 2, 9))
    other = open_case("other", CaseKind.QUERY, RESIDENCE, IN_LIUYANG[1], "430181199202020022",
                      cst(2026, 3, 2, 9), a.rules, a.calendar)
    third = open_case("third", CaseKind.QUERY, RESIDENCE, IN_LIUYANG[1], "430181199303030033",
                      cst(2026, 3, 2, 9), a.rules, a.calendar)
    fake = FakeCaseStore()
    for s in (store, fake):
        await s.add_cases([first, other, third])
        assert await s.save_answer(record_feedback(third, cst(2026, 3, 3, 9), FeedbackResult.FOUND), None, ledger_version=0)

    def found(case: Case) -> Case:
        return record_feedback(case, cst(2026, 3, 5, 9), FeedbackResult.FOUND)

    for s in (store, fake):
        verdicts = await s.save_answers([
            (found(first), 0),  # the person's first reply: written
            (found(other), 3),  # computed at a ledger version the person never had: moved meanwhile
            (found(third), 1),  # at the right version, but the case has its reply already
        ])
        assert verdicts == [True, None, False]
        assert (await s.get_case("first")).feedback is not None
        assert (await s.get_case("other")).feedback is None
        assert (await s.get_case("third")).feedback.answered_at == cst(2026, 3, 3, 9)
        assert await s.ledger_version(first.strike_key) == 1


async def test_a_redelivered_batch_of_new_cases_keeps_each_case_once(store: SqlCaseStore, a: Cases) -> None:
    """On PostgreSQL one autocommit statement opens a batch of cases; a batch holding a case opened
    before is refused whole by the primary key and opened one by one, each case once, unchanged."""
    first, second, third = (a.query(f"q-{i}", cst(2026, 3, 2 + i, 9)) for i in range(3))
    await store.add_cases([first, second])
    await store.add_cases([second, third])
    assert {c.case_id for c in await store.cases_in_months([MARCH])} == {"q-0", "q-1", "q-2"}
    assert len(await store.cases_in_months([MARCH])) == 3


async def test_a_lone_reply_gets_the_same_verdicts_as_one_saved_in_a_group(store: SqlCaseStore, a: Cases) -> None:
    """On PostgreSQL a lone reply is one statement (the ledger's conditional write, then the case's);
    its verdicts are those of the group's transaction, and the fake store's."""
    first = a.query("first", cst(2026, 3, 2, 9))
    second = a.query("second", cst(2026, 3, 3, 9))  # the same person again
    other = open_case("other", CaseKind.QUERY, RESIDENCE, IN_LIUYANG[1], "430181199202020022",
                      cst(2026, 3, 2, 9), a.rules, a.calendar)
    fake = FakeCaseStore()

    def not_found(case: Case) -> Case:
        return record_feedback(case, cst(2026, 3, 5, 9), FeedbackResult.NO_SUCH_PERSON, reason=NoSuchPersonReason.WRONG_ADDRESS)

    for s in (store, fake):
        await s.add_cases([first, second, other])
        assert await s.save_answers([(not_found(first), 0)]) == [True]  # her first reply: the ledger is made
        assert await s.save_answers([(not_found(second), 0)]) == [None]  # computed before the first: moved
        assert await s.save_answers([(not_found(second), 1)]) == [True]  # at the version the first left
        assert await s.save_answers([(not_found(second), 2)]) == [False]  # the case has its reply already
        assert await s.save_answers([(not_found(other), 5)]) == [None]  # a version she never had
        assert (await s.get_case("second")).feedback is not None
        assert (await s.get_case("other")).feedback is None


async def test_a_no_such_person_answer_delivered_again_keeps_its_one_reverification_task(store: SqlCaseStore) -> None:
    """The re-verification task of a 查无此人 answer is one row per query (one autocommit statement on
    PostgreSQL); the same answer delivered again leaves the first task as it was."""
    from gateway.workflow.reverification import ReverificationTask

    task = ReverificationTask(task_id="reverify:q1", residence_township=RESIDENCE, registration_township=IN_LIUYANG[1],
                              citizen_id="430181199202020022", query_id="q1", opened_at=cst(2026, 3, 5, 9),
                              reason=NoSuchPersonReason.WRONG_ADDRESS, remarks="first")
    await store.add_task(task)
    await store.add_task(ReverificationTask(**{**task.__dict__, "remarks": "again", "opened_at": cst(2026, 3, 6, 9)}))
    assert await store.get_task("q1") == task
