"""The tallies the database keeps for the dashboard count exactly what the accounting rules count.

A quarter is played out in time order through the gateway's own writes — cases opened (in batches too),
answered (查无此人 along correction chains up to 漏管), withdrawn, deadlines moved by a calendar update,
the tick moving states and closing months — with the log folded at random moments, and at checkpoints
every figure of every period and region is compared with `accounting.account` over the cases as stored.
Also: answers tracked while their month is being closed, several writers and two folding gateways at once
(PostgreSQL: real concurrent transactions), which writes are logged, and deadlines long past merged.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema, is_sqlite
from gateway.adapters.sql.tally_store import TallyStore, merge_boundary
from gateway.adapters.sql.tally_tables import open_tallies
from gateway.clock import FakeClock
from gateway.tracking.tracker import CaseTracker
from gateway.web.dashboard_data import DashboardReader, months_of, sum_counts
from gateway.workflow.accounting import Counts, Period, account
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, Direction, evaluate, open_case, record_feedback, withdraw
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.feedback_handling import handle_feedback, rebuild_ledger
from gateway.workflow.periods import Quarter, ReportingMonth

from ..workflow.builders import a_query
from ..workflow.conftest import cst
from ..workflow.test_accounting_fast_path import later_calendar

pytestmark = pytest.mark.database

Q1 = Quarter(2026, 1)
DECEMBER, APRIL = ReportingMonth(2025, 12), ReportingMonth(2026, 4)
MONTHS = (DECEMBER, *Q1.months, APRIL)
PERIODS: tuple[Period, ...] = (*MONTHS, Q1)
TOWNSHIPS = ("430521101", "430521102", "430602001", "431102003")
RESIDENCES = ("440106001", "330102001")
PREFIXES = ("43", "430521", "431102003", "44")  # province, county, township; the residence side
TICK_DELAY = timedelta(minutes=5)  # the tick closes a month a few minutes after its cutoff
END = cst(2026, 5, 25)  # the play stops here: months up to May closed, corrections of corrections cut off


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


async def stored_cases(store: SqlCaseStore) -> list[Case]:
    return await store.cases_in_months(MONTHS)


async def assert_tallies_are_the_rules(engine: AsyncEngine, store: SqlCaseStore, now: datetime, what: str) -> None:
    """Every period and region, per township and per month, and the overdue totals: as `account` counts them."""
    cases = await stored_cases(store)
    closures = await store.month_closures()
    tallies = TallyStore(engine)
    for period in PERIODS:
        expected = account(cases, period, now, closures)
        months = months_of(period)
        for prefix in PREFIXES:
            mine = {t: c for t, c in expected.items() if t.startswith(prefix)}
            assert await tallies.counts(prefix, months, now) == mine, (what, str(period), prefix)
        for prefix in ("43", "44"):
            total = sum_counts(c for t, c in expected.items() if t.startswith(prefix))
            assert await tallies.overdue_total(prefix, months, now) == total.overdue + total.notifications_overdue
    for prefix in PREFIXES:
        by_month = await tallies.month_totals(prefix, MONTHS, now)
        for month in MONTHS:
            rows = account(cases, month, now, closures)
            total = sum_counts(c for t, c in rows.items() if t.startswith(prefix))
            assert by_month.get(str(month), Counts()) == total, (what, str(month), prefix)


@dataclass(order=True)
class Step:
    at: datetime
    order: int
    run: Callable[[], Awaitable[None]] = field(compare=False)


class Quarter1:
    """The quarter's events, played in time order through the store and the tracker (the gateway's writes)."""

    def __init__(self, engine: AsyncEngine, rules: DeadlineRuleSet, calendar: WorkingDayCalendar, seed: int) -> None:
        self.engine, self.rules, self.rng = engine, rules, random.Random(seed)
        self.store = SqlCaseStore(engine)
        self.clock = FakeClock(cst(2025, 12, 14))
        self.tracker = CaseTracker(self.store, self.clock, calendar, rules)
        self.tallies = TallyStore(engine)
        self.steps: list[Step] = []
        self.order = itertools.count()
        self.ids = itertools.count()
        self.checks = 0
        self.logged_at_checks: list[int] = []

    def at(self, when: datetime, run: Callable[[], Awaitable[None]]) -> None:
        heapq.heappush(self.steps, Step(when, next(self.order), run))

    # --- what happens ---------------------------------------------------------------------------------

    def plan(self, cases: int = 240) -> None:
        rng = self.rng
        start = cst(2025, 12, 14)
        arrivals = sorted(start + timedelta(hours=rng.uniform(0, 24 * 108)) for _ in range(cases))
        for received, group in itertools.groupby(arrivals, key=lambda t: t.replace(minute=0, second=0, microsecond=0)):
            self.at(received, lambda n=len(list(group)), at=received: self.open_cases(at, n))  # a batch: one INSERT
        for month in (DECEMBER, *Q1.months, APRIL):
            cutoff = month.ends_at
            self.at(cutoff + timedelta(minutes=2), self.fold_at(cutoff + timedelta(minutes=2)))
            self.at(cutoff + timedelta(minutes=3), self.check_at(cutoff + timedelta(minutes=3)))
            self.at(cutoff + TICK_DELAY, self.tick_at(cutoff + TICK_DELAY))
            self.at(cutoff + timedelta(minutes=20), self.check_at(cutoff + timedelta(minutes=20)))
        self.at(cst(2026, 3, 5, 12), self.calendar_update)
        day = start
        while day < END:
            self.at(day + timedelta(hours=6), self.tick_at(day + timedelta(hours=6)))
            if rng.random() < 0.5:
                self.at(day + timedelta(hours=rng.uniform(0, 24)), self.fold_at(None))
            if day.day % 5 == 0:
                self.at(day + timedelta(hours=13), self.check_at(day + timedelta(hours=13)))
            day += timedelta(days=1)

    async def open_cases(self, at: datetime, n: int, resubmits: Case | None = None) -> None:
        rng, new = self.rng, []
        for _ in range(n):
            kind = CaseKind.QUERY if resubmits else rng.choice(list(CaseKind))
            person = resubmits.citizen_id if resubmits else f"4305211990010{rng.randrange(60):04d}X"
            registration = resubmits.registration_township if resubmits else rng.choice(TOWNSHIPS)
            residence = resubmits.residence_township if resubmits else rng.choice(RESIDENCES)
            extra: dict[str, object] = {}
            if kind is CaseKind.NOTIFICATION and rng.random() < 0.25:  # 户籍地向现居住地通报: the residence replies
                extra = {"direction": Direction.TO_RESIDENCE, "event_date": date(at.year, at.month, at.day)}
            case = open_case(f"c{next(self.ids):04d}", kind, residence, registration, person, at, self.rules,
                             self.tracker.calendar, resubmits=resubmits, **extra)  # type: ignore[arg-type]
            new.append(evaluate(case, at))
            self.plan_reply(new[-1])
        await self.store.add_cases(new)

    def plan_reply(self, case: Case) -> None:
        rng, p = self.rng, self.rng.random()
        if p < 0.05:
            self.at(case.received_at + timedelta(hours=rng.uniform(1, 150)), lambda: self.withdraw(case.case_id))
            return
        if p < 0.12:
            return  # never answered: open, then overdue
        answered_at = case.received_at + timedelta(days=rng.uniform(0.1, 20))
        if rng.random() < 0.2:  # the boundaries: 24:00 of the last working day; after the cutoff, before the close
            cutoff = case.reporting_month.ends_at
            answered_at = max(case.received_at + timedelta(minutes=1), rng.choice(
                [case.deadline.due_at, cutoff + timedelta(minutes=1), cutoff + TICK_DELAY]))
        if case.resubmission_of:
            result = FeedbackResult.NO_SUCH_PERSON if rng.random() < 0.7 else FeedbackResult.FOUND
        else:
            result = FeedbackResult.NO_SUCH_PERSON if rng.random() < 0.35 else FeedbackResult.FOUND
        self.at(answered_at, lambda: self.answer(case.case_id, answered_at, result))

    async def answer(self, case_id: str, at: datetime, result: FeedbackResult) -> None:
        """As the tracker records a clerk's answer (its ledger version, then the person's ledger)."""
        case = await self.store.get_case(case_id)
        assert case is not None
        if not case.is_open:
            return  # withdrawn first
        version = await self.store.ledger_version(case.strike_key)
        ledger = rebuild_ledger(c for c in await self.store.cases_for_key(case.strike_key) if c.case_id != case_id)
        reason = NoSuchPersonReason.WRONG_ADDRESS if result is FeedbackResult.NO_SUCH_PERSON else None
        outcome = handle_feedback(evaluate(case, at), ledger, at, result, reason=reason)
        assert await self.store.save_answer(outcome.case, outcome.charge, ledger_version=version)
        if result is FeedbackResult.NO_SUCH_PERSON and case.kind is not CaseKind.NOTIFICATION and self.rng.random() < 0.8:
            corrected_at = at + timedelta(days=self.rng.uniform(0.5, 4))  # visited again, the query corrected
            self.at(corrected_at, lambda: self.open_cases(corrected_at, 1, resubmits=outcome.case))

    async def withdraw(self, case_id: str) -> None:
        case = await self.store.get_case(case_id)
        assert case is not None
        if case.is_open:
            at = self.clock.now()
            await self.store.save_cases([withdraw(evaluate(case, at), at)])

    async def calendar_update(self) -> None:
        await self.tracker.calendar_updated(later_calendar(self.tracker.calendar))

    def tick_at(self, at: datetime) -> Callable[[], Awaitable[None]]:
        async def tick() -> None:
            await self.tracker.tick()  # states and reminders (nothing the tallies count), and closing months
        return tick

    def fold_at(self, at: datetime | None) -> Callable[[], Awaitable[None]]:
        async def fold() -> None:
            await self.tallies.fold(self.clock.now())
        return fold

    def check_at(self, at: datetime) -> Callable[[], Awaitable[None]]:
        async def check() -> None:
            if self.rng.random() < 0.4:
                await self.tallies.fold(at)  # a check right after a fold (the log empty, but for undecided answers)
            self.checks += 1
            self.logged_at_checks.append(await self.tallies.backlog())
            await assert_tallies_are_the_rules(self.engine, self.store, at, f"check at {at.isoformat()}")
        return check

    async def play(self) -> None:
        while self.steps and self.steps[0].at < END:
            step = heapq.heappop(self.steps)
            self.clock.set(step.at)
            await step.run()


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_quarter_of_changes_counted_while_they_happen_is_what_the_rules_count(
    engine: AsyncEngine, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar, seed: int
) -> None:
    quarter = Quarter1(engine, rules, real_calendar, seed)
    quarter.plan()
    await quarter.play()
    assert quarter.checks >= 20
    # Checked with changes waiting in the log and with none (just folded), both.
    assert any(n > 0 for n in quarter.logged_at_checks) and any(n == 0 for n in quarter.logged_at_checks)
    cases = await stored_cases(quarter.store)
    assert sum(c.missed_management is not None for c in cases) >= 1  # 漏管 along a correction chain
    assert sum(c.deadline_changes != () for c in cases) >= 1  # deadlines moved by the calendar update
    assert sum(c.withdrawn_at is not None for c in cases) >= 1
    assert {c.responsible_township[:2] for c in cases} >= {"43", "44"}  # to_residence notifications too
    # At the end, every month closed and everything folded: still the rules' figures, then and weeks later.
    await quarter.tallies.fold(END)
    assert await quarter.tallies.backlog() == 0
    for now in (END, END + timedelta(days=40)):
        await assert_tallies_are_the_rules(engine, quarter.store, now, f"after, at {now.isoformat()}")


async def test_answers_after_the_cutoff_inside_their_deadline_are_counted_on_time_at_once_and_when_the_month_freezes(
    engine: AsyncEngine, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    store, tallies = SqlCaseStore(engine), TallyStore(engine)
    march = Q1.months[2]
    received = cst(2026, 3, 18, 10)  # Wed 18 Mar: due 24:00 Wed 1 Apr, after the cutoff (24:00 on 20 March)
    before, after = (evaluate(a_query(received, rules, real_calendar, case_id=i), received) for i in ("before", "after"))
    await store.add_cases([before, after])
    # One answered just before the cutoff, one the day after it: both inside their 10 working days (rules "3").
    for case, at in ((before, march.ends_at - timedelta(seconds=1)), (after, march.ends_at + timedelta(days=1))):
        assert await store.save_answer(record_feedback(evaluate(case, at), at, FeedbackResult.FOUND), None)
    now = march.ends_at + timedelta(days=2)
    assert await tallies.fold(now) == 6 and await tallies.backlog() == 0  # nothing waits for a close any more
    live = (await tallies.counts("43", [march], now))["430521101"]
    assert (live.answered, live.on_time, live.late) == (2, 2, 0)
    tracker = CaseTracker(store, FakeClock(now), real_calendar, rules)
    assert await tracker.close_due_periods(now) == []  # provisional: a deadline of its cases still runs
    assert await tracker.close_due_periods(cst(2026, 4, 2)) == ["2026-03", "2026Q1"]
    frozen = (await store.period_snapshot("2026-03")).as_dict()["430521101"]  # type: ignore[union-attr]
    assert (frozen.answered, frozen.on_time, frozen.late) == (2, 2, 0)


async def test_only_changes_of_counted_facts_are_logged(
    engine: AsyncEngine, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    store, tallies = SqlCaseStore(engine), TallyStore(engine)
    received = cst(2026, 3, 2, 9)
    cases = [evaluate(a_query(received, rules, real_calendar, case_id=f"q-{i}"), received) for i in range(3)]
    await store.add_cases(cases)
    assert await tallies.backlog() == 3
    tracker = CaseTracker(store, FakeClock(cst(2026, 3, 13, 9)), real_calendar, rules)
    moved, reminders = await tracker.advance_cases(cst(2026, 3, 13, 9))  # due soon: a state and a reminder
    assert moved == 3 and reminders
    assert await tallies.backlog() == 3  # the tick's writes change nothing the tallies count
    answered_at = cst(2026, 3, 13, 10)
    await store.save_answer(record_feedback(evaluate(cases[0], answered_at), answered_at, FeedbackResult.FOUND), None)
    assert await tallies.backlog() == 3 + 2  # the facts it replaced, and the new ones
    await store.save_cases([withdraw(evaluate(cases[1], answered_at), answered_at)])
    assert await tallies.backlog() == 3 + 2 + 2
    assert await tallies.fold(answered_at) == 7 and await tallies.backlog() == 0
    counts = (await tallies.counts("430521101", [Q1.months[2]], answered_at))["430521101"]
    assert counts == Counts(received=2, answered=1, on_time=1, still_open=1)


async def test_deadlines_long_past_are_merged_into_one_row_and_still_counted_overdue(
    engine: AsyncEngine, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    store, tallies = SqlCaseStore(engine), TallyStore(engine)
    days = [cst(2026, 2, 23, 9) + timedelta(days=d) for d in range(12)]  # many deadlines, never answered
    cases = [evaluate(a_query(at, rules, real_calendar, case_id=f"q-{i}"), at) for i, at in enumerate(days)]
    await store.add_cases(cases)
    await tallies.fold(days[-1])
    march = Q1.months[2]

    async def rows() -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(open_tallies))).scalar() or 0)

    assert await rows() == len({c.deadline.due_at for c in cases})
    later = cst(2026, 4, 20, 9)
    await tallies.fold(later)  # nothing to fold: the deadlines before the day before yesterday are merged
    assert await rows() == 1
    async with engine.connect() as conn:
        [(due_at,)] = (await conn.execute(select(open_tallies.c.due_at))).all()
    assert (due_at if due_at.tzinfo else due_at.replace(tzinfo=timezone.utc)) == merge_boundary(later)
    for now in (later, later + timedelta(days=30)):
        assert await tallies.counts("43", [march], now) == account(cases, march, now)
    # An answer to a case whose deadline is merged still takes it out of the open ones.
    await store.save_answer(record_feedback(evaluate(cases[0], later), later, FeedbackResult.FOUND), None)
    for fold in (False, True):
        if fold:
            await tallies.fold(later)
        assert await tallies.counts("43", [march], later) == account(await stored_cases(store), march, later)


async def test_writers_and_two_folding_gateways_at_once_count_each_change_exactly_once(
    database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # PostgreSQL: three engines, as three gateways on one database (writers and folds in concurrent
    # transactions, decided by the database). SQLite: one engine, as its single writer allows.
    engines = [create_engine(database_url)] if is_sqlite(database_url) else [create_engine(database_url) for _ in range(3)]
    await create_schema(engines[0])
    stores = [SqlCaseStore(e) for e in engines]
    try:
        received = cst(2026, 3, 2, 9)
        opened = [evaluate(a_query(received, rules, real_calendar, case_id=f"q-{i:03d}", registration=TOWNSHIPS[i % 2],
                                   citizen_id=f"43052119900101{i:03d}X"), received) for i in range(120)]
        await stores[0].add_cases(opened)
        answered_at = cst(2026, 3, 9, 10)
        done = asyncio.Event()
        folded: list[int] = []

        async def answer(store: SqlCaseStore, cases: list[Case]) -> None:
            for case in cases:
                result, reason = FeedbackResult.FOUND, None
                if case.case_id.endswith("7"):
                    result, reason = FeedbackResult.NO_SUCH_PERSON, NoSuchPersonReason.WRONG_ADDRESS
                answered = record_feedback(evaluate(case, answered_at), answered_at, result, reason=reason)
                assert await store.save_answer(answered, None)

        async def open_more(store: SqlCaseStore) -> None:
            for batch in range(8):
                new = [evaluate(a_query(answered_at, rules, real_calendar, case_id=f"n-{batch}-{i}",
                                        kind=CaseKind.NOTIFICATION), answered_at) for i in range(5)]
                await store.add_cases(new)

        async def fold_until_done(engine: AsyncEngine) -> None:
            tallies = TallyStore(engine)
            while not done.is_set():
                folded.append(await tallies.fold(answered_at))
                await asyncio.sleep(0)

        async def write() -> None:
            await asyncio.gather(answer(stores[0], opened[0::2]), answer(stores[-1], opened[1::2]), open_more(stores[1 % len(stores)]))
            done.set()

        await asyncio.gather(write(), fold_until_done(engines[1 % len(engines)]), fold_until_done(engines[-1]))
        folded.append(await TallyStore(engines[0]).fold(answered_at))
        assert sum(folded) == 120 + 120 * 2 + 40  # every logged change folded once: opened, answered (−old +new), added
        assert await TallyStore(engines[0]).backlog() == 0
        march = Q1.months[2]
        cases = await stores[0].cases_in_months([march])
        counts = await TallyStore(engines[0]).counts("43", [march], answered_at)
        assert counts == account(cases, march, answered_at)
        assert sum_counts(counts.values()).answered == 120
        reader = DashboardReader(engines[0], real_calendar)
        assert await reader.township_counts("43", march, answered_at) == counts
    finally:
        for e in engines:
            await e.dispose()
