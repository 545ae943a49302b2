"""The tracking store on SQLAlchemy Core."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import Select, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy import case as sql_case
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.in_lists import padded_sorted
from gateway.adapters.sql.direct_pg import direct
from gateway.adapters.sql.unnest_insert import column_arrays, insert_rows, unnest_arrays
from gateway.adapters.sql.engine import is_sqlite, reader, write_transaction
from gateway.adapters.sql.sqlite_hop import HopStatements, write_in_one_hop
from gateway.adapters.sql.store import _utc
from gateway.adapters.sql.workflow_tables import (
    OPEN_STATE_VALUES,
    cases,
    missed_management,
    period_closures,
    reminders,
    reverification_tasks,
    strike_evidence,
    strike_ledgers,
)
from gateway.tracking.ports import StrikeConflict, township_range
from gateway.tracking.serialization import CASE, CHARGE, REMINDER, SNAPSHOT, TASK
from gateway.workflow.accounting import AccountingSnapshot
from gateway.workflow.case_facts import CaseFacts, facts_of
from gateway.workflow.cases import Case
from gateway.workflow.deadlines import CaseKind
from gateway.workflow.events import EVENT_KINDS, EventFact
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.reminders import Reminder
from gateway.workflow.reverification import ReverificationTask, TaskState
from gateway.workflow.strikes import MissedManagementCharge, StrikeKey


def _ledger_of(key: StrikeKey) -> tuple[Any, ...]:
    return (strike_ledgers.c.residence_township == key.residence_township,
            strike_ledgers.c.registration_township == key.registration_township,
            strike_ledgers.c.subject == key.citizen_id)


def case_values(case: Case) -> dict[str, object]:
    """The row of `cases` for a case (also used by the benchmark's bulk load)."""
    facts = facts_of(case)
    return {
        "case_id": case.case_id,
        "kind": case.kind.value,
        "residence_township": case.residence_township,
        "registration_township": case.registration_township,
        "subject": case.citizen_id,
        "received_at": case.received_at,
        "reporting_month": str(case.reporting_month),
        "state": case.state.value,
        "due_at": case.deadline.due_at,
        "data": CASE.dump_json(case).decode(),
        "original_due_at": facts.due_at,
        "calendar_version": facts.calendar_version,
        "answered_at": facts.answered_at,
        "result": facts.result.value if facts.result is not None else None,
        "withdrawn_at": facts.withdrawn_at,
        "charged_at": facts.charged_at,
        "deadline_moved": bool(facts.deadline_moves),
        "next_change_at": case.next_change_at,
        "responsible_township": facts.responsible_township,
        "sender_township": facts.sender_township,
        "strike_subject": case.strike_key.citizen_id,
        "reason": facts.reason.value if facts.reason is not None else None,
        "submission_due_at": facts.submission_due_at,
        "resubmission_of": facts.resubmission_of,
        "notification_kind": case.notification_kind,
        "event_date": case.event_date.isoformat() if case.event_date is not None else None,
    }


_FACT_COLUMNS = (
    cases.c.case_id,
    cases.c.responsible_township,
    cases.c.reporting_month,
    cases.c.received_at,
    cases.c.original_due_at,
    cases.c.calendar_version,
    cases.c.answered_at,
    cases.c.result,
    cases.c.withdrawn_at,
    cases.c.charged_at,
    # The whole case only where a calendar update moved its deadline: the moves live there.
    sql_case((cases.c.deadline_moved, cases.c.data), else_=None),
    cases.c.kind,
    cases.c.sender_township,
    cases.c.reason,
    cases.c.submission_due_at,
    cases.c.resubmission_of,
)
_RESULTS = {r.value: r for r in FeedbackResult}
_KINDS = {k.value: k for k in CaseKind}
_REASONS = {r.value: r for r in NoSuchPersonReason}
# One reply per case, decided by the database: the answer is written only while the case has none.
_ANSWER_CASE = (
    update(cases)
    .where(cases.c.case_id == bindparam("b_case_id"), cases.c.answered_at.is_(None), cases.c.withdrawn_at.is_(None))
    .values({column.name: bindparam(column.name) for column in cases.c if column.name != "case_id"})
)
_UPDATE_CASE = (
    update(cases)
    .where(cases.c.case_id == bindparam("b_case_id"))
    .values({column.name: bindparam(column.name) for column in cases.c if column.name != "case_id"})
)
# What a tick moves is open: a case answered (or withdrawn) since the tick read it keeps its answer.
_ADVANCE_CASE = _UPDATE_CASE.where(cases.c.answered_at.is_(None), cases.c.withdrawn_at.is_(None))


class _FactsReader:
    """Rows of `_FACT_COLUMNS` to `CaseFacts`, as cheaply as possible: a close reads millions."""

    def __init__(self, naive_times: bool) -> None:
        self.naive_times = naive_times  # SQLite returns naive datetimes (they are UTC)
        self.months: dict[str, ReportingMonth] = {}

    def __call__(self, rows: Iterable[Sequence[object]]) -> list[CaseFacts]:
        months, results, kinds, reasons, out = self.months, _RESULTS, _KINDS, _REASONS, []
        for (case_id, township, month, received, due, version, answered, result, withdrawn, charged, data,
             kind, sender, reason, submission_due, resubmission_of) in rows:
            if data is not None:
                out.append(facts_of(CASE.validate_json(data)))  # type: ignore[arg-type]
                continue
            if self.naive_times:
                received, due, answered, withdrawn, charged, submission_due = (
                    _utc(t) for t in (received, due, answered, withdrawn, charged, submission_due)  # type: ignore[arg-type]
                )
            reporting_month = months.get(month)  # type: ignore[arg-type]
            if reporting_month is None:
                reporting_month = months[month] = ReportingMonth.parse(month)  # type: ignore[arg-type, index]
            out.append(CaseFacts(case_id, township, reporting_month, received, due, version,  # type: ignore[arg-type]
                                 answered, results[result] if result is not None else None,  # type: ignore[index, arg-type]
                                 withdrawn, charged, (), kinds[kind],  # type: ignore[arg-type, index]
                                 sender, reasons[reason] if reason is not None else None,  # type: ignore[arg-type, index]
                                 submission_due, resubmission_of))  # type: ignore[arg-type]
        return out


T = TypeVar("T")

# Bulk reads (a month, a quarter, every open case) fetch and decode this many rows at a time, so the
# raw JSON of a province's quarter (2 million cases, ~2.6 GB) is never held all at once.
_BATCH = 10_000


def _cases(rows: Iterable[object]) -> list[Case]:
    return [CASE.validate_json(row[0]) for row in rows]  # type: ignore[index]


def _facts_of_whole_cases(rows: Iterable[object]) -> list[CaseFacts]:
    return [facts_of(CASE.validate_json(row[0])) for row in rows]  # type: ignore[index]


# Inlined as literals so that PostgreSQL can match the partial index ix_cases_overdue (a generic plan
# with the states as parameters could not prove the index's predicate).
_OPEN = bindparam("open_states", OPEN_STATE_VALUES, expanding=True, literal_execute=True)


# The person's strike key is each answered case's own (residence, registration, strike_subject): read
# through the case in the same statement, so a reply needs no lookup of its case first.
_THIS_CASE = cases.alias("this_case")
_ASKED = _THIS_CASE.c.case_id.in_(bindparam("b_case_ids", expanding=True))
_CASES_OF_THEIR_KEYS = select(_THIS_CASE.c.case_id, cases.c.data).select_from(cases.join(_THIS_CASE, and_(
    _ASKED,
    _THIS_CASE.c.residence_township == cases.c.residence_township,
    _THIS_CASE.c.registration_township == cases.c.registration_township,
    _THIS_CASE.c.strike_subject == cases.c.strike_subject,
)))
_LEDGERS_OF_CASES = select(_THIS_CASE.c.case_id, strike_ledgers.c.version).select_from(strike_ledgers.join(_THIS_CASE, and_(
    _ASKED,
    strike_ledgers.c.residence_township == _THIS_CASE.c.residence_township,
    strike_ledgers.c.registration_township == _THIS_CASE.c.registration_township,
    strike_ledgers.c.subject == _THIS_CASE.c.strike_subject,
)))
_EXISTING_CASES = select(cases.c.case_id).where(cases.c.case_id.in_(bindparam("b_case_ids", expanding=True)))
_MOVE_LEDGER = (
    update(strike_ledgers)
    .where(strike_ledgers.c.residence_township == bindparam("b_residence"),
           strike_ledgers.c.registration_township == bindparam("b_registration"),
           strike_ledgers.c.subject == bindparam("b_subject"),
           strike_ledgers.c.version == bindparam("b_seen"))
    .values(version=bindparam("b_next"))
)



# Replies in ONE statement (PostgreSQL, autocommit), each with the verdict of save_answers: the
# person's ledger moved by its conditional write (created for her first answer, ON CONFLICT DO NOTHING;
# else its version checked and moved), then — only where it moved — the case by the conditional write
# of _ANSWER_CASE (no reply yet, not withdrawn). The replies of one call are of different people (the
# tracker puts two replies about one person in separate rounds), so each ledger row is one reply's.
_CASE_COLUMNS = tuple(c.name for c in cases.c)
_ANSWERS_PG = text(
    "WITH given AS (SELECT * FROM unnest(CAST(:g_case_id AS VARCHAR[]), CAST(:g_residence AS VARCHAR[]),"
    " CAST(:g_registration AS VARCHAR[]), CAST(:g_subject AS VARCHAR[]), CAST(:g_seen AS BIGINT[]))"
    " WITH ORDINALITY AS g(case_id, residence, registration, subject, seen, n)), "
    "created AS (INSERT INTO strike_ledgers (residence_township, registration_township, subject, version)"
    " SELECT residence, registration, subject, 1 FROM given WHERE seen = 0 ON CONFLICT DO NOTHING"
    " RETURNING residence_township, registration_township, subject), "
    "moved AS (UPDATE strike_ledgers SET version = given.seen + 1 FROM given WHERE given.seen > 0"
    " AND strike_ledgers.residence_township = given.residence"
    " AND strike_ledgers.registration_township = given.registration"
    " AND strike_ledgers.subject = given.subject AND strike_ledgers.version = given.seen"
    " RETURNING strike_ledgers.residence_township, strike_ledgers.registration_township, strike_ledgers.subject), "
    "won AS (SELECT given.case_id FROM given JOIN (SELECT * FROM created UNION ALL SELECT * FROM moved) AS l"
    " ON l.residence_township = given.residence AND l.registration_township = given.registration"
    " AND l.subject = given.subject), "
    f"answers AS (SELECT * FROM {unnest_arrays(cases, _CASE_COLUMNS, prefix='c_')} AS a({', '.join(_CASE_COLUMNS)})), "
    "answered AS (UPDATE cases SET "
    + ", ".join(f"{n} = answers.{n}" for n in _CASE_COLUMNS if n != "case_id")
    + " FROM answers JOIN won ON won.case_id = answers.case_id"
    " WHERE cases.case_id = answers.case_id AND cases.answered_at IS NULL AND cases.withdrawn_at IS NULL"
    " RETURNING cases.case_id) "
    "SELECT EXISTS (SELECT 1 FROM won WHERE won.case_id = given.case_id),"
    " EXISTS (SELECT 1 FROM answered WHERE answered.case_id = given.case_id) FROM given ORDER BY given.n"
)


class SqlCaseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        dialect_insert = sqlite_insert if is_sqlite(str(engine.url)) else pg_insert
        self._first_ledger = dialect_insert(strike_ledgers).on_conflict_do_nothing()
        self._reader = reader(engine)  # one-shot reads: no BEGIN … ROLLBACK on PostgreSQL
        self._oneshot = direct(engine)  # the hot path's one-shot statements, straight on asyncpg (PostgreSQL)
        self._sqlite = is_sqlite(str(engine.url))

    def _write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return write_transaction(self.engine)

    async def _select(self, query: object) -> list[object]:
        async with self._reader.connect() as conn:
            return list((await conn.execute(query)).all())  # type: ignore[arg-type]

    async def _bulk(self, query: Select[Any], read: Callable[[Sequence[Any]], list[T]]) -> list[T]:
        """Many rows, streamed from a server-side cursor and turned into values batch by batch."""
        out: list[T] = []
        async with self.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=_BATCH))
            async for batch in result.partitions():
                out.extend(read(batch))
        return out

    async def _bulk_cases(self, query: Select[tuple[str]]) -> list[Case]:
        return await self._bulk(query, _cases)

    async def get_case(self, case_id: str) -> Case | None:
        found = _cases(await self._select(select(cases.c.data).where(cases.c.case_id == case_id)))
        return found[0] if found else None

    async def add_case(self, case: Case) -> bool:
        try:
            async with self._write() as conn:
                await conn.execute(insert(cases), case_values(case))
            return True
        except IntegrityError:
            return False

    async def add_cases(self, new: list[Case]) -> None:
        if not new:
            return
        try:
            await insert_rows(self.engine, cases, [case_values(c) for c in new])
        except IntegrityError:
            for case in new:  # a redelivered batch: some exist already
                await self.add_case(case)

    async def existing_case_ids(self, case_ids: list[str]) -> set[str]:
        if not case_ids:
            return set()
        async with self._oneshot.connect() as conn:
            rows = (await conn.execute(_EXISTING_CASES, {"b_case_ids": padded_sorted(case_ids)})).all()
        return {row[0] for row in rows}

    async def save_cases(self, updated: Iterable[Case]) -> None:
        async with self._write() as conn:
            await self._update_many(conn, list(updated))

    @staticmethod
    async def _update_many(conn: AsyncConnection, updated: list[Case], statement: Any = _UPDATE_CASE) -> None:
        # One statement (executemany): a tick after a long pause can move tens of thousands of cases.
        if updated:
            await conn.execute(statement, [{"b_case_id": c.case_id, **case_values(c)} for c in updated])

    async def save_advanced(self, updated: Iterable[Case], sent: Iterable[Reminder], at: datetime) -> None:
        rows = [
            {"township": r.township, "case_id": r.case_id, "kind": r.kind.value, "sent_at": at,
             "data": REMINDER.dump_json(r).decode()}
            for r in sent
        ]
        async with self._write() as conn:
            await self._update_many(conn, list(updated), _ADVANCE_CASE)
            if rows:
                await conn.execute(insert(reminders), rows)

    async def ledger_version(self, key: StrikeKey) -> int:
        rows = await self._select(select(strike_ledgers.c.version).where(*_ledger_of(key)))
        return rows[0][0] if rows else 0  # type: ignore[index]

    async def save_answer(
        self, case: Case, charge: MissedManagementCharge | None, *, ledger_version: int | None = None
    ) -> bool:
        async with self._write() as conn:
            written = await conn.execute(_ANSWER_CASE, {"b_case_id": case.case_id, **case_values(case)})
            if written.rowcount != 1:
                return False  # the case has its reply already: this one, and its strike, are not counted
            if ledger_version is not None:
                await self._advance_ledger(conn, case.strike_key, ledger_version)
            if charge is not None:
                last = charge.evidence_query_ids[-1]
                try:
                    await conn.execute(
                        insert(missed_management).values(
                            registration_township=charge.registration_township,
                            last_query_id=last,
                            charged_at=charge.charged_at,
                            data=CHARGE.dump_json(charge).decode(),
                        )
                    )
                    await conn.execute(insert(strike_evidence),
                                       [{"query_id": q, "last_query_id": last} for q in charge.evidence_query_ids])
                except IntegrityError:
                    # A strike of this run is evidence of another charge already: the whole answer is
                    # rolled back, and the tracker computes it again from what is stored now.
                    raise StrikeConflict(f"a query of {list(charge.evidence_query_ids)} is evidence of a charge already") from None
        return True

    async def save_withdrawal(self, case: Case) -> bool:
        """The withdrawn case, written by the answer's own conditional write (``answered_at IS NULL AND
        withdrawn_at IS NULL``): of a reply and a withdrawal at once, one wins and the other writes nothing."""
        async with self._write() as conn:
            written = await conn.execute(_ANSWER_CASE, {"b_case_id": case.case_id, **case_values(case)})
        return written.rowcount == 1

    @staticmethod
    async def _advance_ledger(conn: AsyncConnection, key: StrikeKey, seen: int) -> None:
        """Move the person's ledger from the version the tracker read to the next, or raise StrikeConflict
        (on PostgreSQL a concurrent writer's UPDATE waits for this row's lock, then matches nothing)."""
        if seen == 0:
            try:  # the first answer of this person: its row, which a concurrent first answer also inserts
                await conn.execute(insert(strike_ledgers).values(
                    residence_township=key.residence_township, registration_township=key.registration_township,
                    subject=key.citizen_id, version=1))
                return
            except IntegrityError:  # the transaction is rolled back by the caller's exit
                raise StrikeConflict(f"the strike ledger of {key.registration_township} moved meanwhile") from None
        moved = await conn.execute(
            update(strike_ledgers).where(*_ledger_of(key), strike_ledgers.c.version == seen).values(version=seen + 1)
        )
        if moved.rowcount != 1:
            raise StrikeConflict(f"the strike ledger of {key.registration_township} moved meanwhile")

    async def cases_for_key(self, key: StrikeKey) -> list[Case]:
        return _cases(
            await self._select(
                select(cases.c.data).where(
                    cases.c.residence_township == key.residence_township,
                    cases.c.registration_township == key.registration_township,
                    cases.c.strike_subject == key.citizen_id,
                )
            )
        )

    async def answer_context(self, case_id: str) -> tuple[Case | None, int, list[Case]]:
        return (await self.answer_contexts([case_id])).get(case_id, (None, 0, []))

    async def answer_contexts(self, case_ids: Sequence[str]) -> dict[str, tuple[Case, int, list[Case]]]:
        """One connection, two statements, the ledgers' versions first (see the port)."""
        if not case_ids:
            return {}
        params = {"b_case_ids": padded_sorted(case_ids)}
        async with self._oneshot.connect() as conn:
            versions = dict((await conn.execute(_LEDGERS_OF_CASES, params)).all())
            rows = (await conn.execute(_CASES_OF_THEIR_KEYS, params)).all()
        parsed = {data: CASE.validate_json(data) for data in {row[1] for row in rows}}
        of_key: dict[str, list[Case]] = {}
        for asked, data in rows:
            of_key.setdefault(asked, []).append(parsed[data])
        out = {}
        for asked, found in of_key.items():
            case = next((c for c in found if c.case_id == asked), None)
            if case is not None:
                out[asked] = (case, versions.get(asked, 0), found)
        return out

    async def save_answers(self, answers: Sequence[tuple[Case, int]]) -> list[bool | None]:
        """The ledger first, each by a conditional write that cannot fail the transaction (ON CONFLICT
        DO NOTHING for a person's first answer, a version check after that), then the case by the
        conditional write of save_answer; a verdict is read from each statement's row count."""
        if not self._sqlite:
            return await self._save_answers_pg(answers)
        # The replies and the commit in one hop to the connection's thread (sqlite_hop.py).
        return await write_in_one_hop(self.engine, lambda run: [self._save_answer(run, case, seen) for case, seen in answers])

    def _save_answer(self, run: HopStatements, case: Case, seen: int) -> bool | None:
        key = case.strike_key
        if seen == 0:
            moved = run.execute(self._first_ledger, {
                "residence_township": key.residence_township, "registration_township": key.registration_township,
                "subject": key.citizen_id, "version": 1})
        else:
            moved = run.execute(_MOVE_LEDGER, {
                "b_residence": key.residence_township, "b_registration": key.registration_township,
                "b_subject": key.citizen_id, "b_seen": seen, "b_next": seen + 1})
        if moved.rowcount != 1:
            return None
        return run.execute(_ANSWER_CASE, {"b_case_id": case.case_id, **case_values(case)}).rowcount == 1

    async def _save_answers_pg(self, answers: Sequence[tuple[Case, int]]) -> list[bool | None]:
        if not answers:
            return []
        keys = [case.strike_key for case, _ in answers]
        params: dict[str, Any] = {
            "g_case_id": [case.case_id for case, _ in answers],
            "g_residence": [k.residence_township for k in keys],
            "g_registration": [k.registration_township for k in keys],
            "g_subject": [k.citizen_id for k in keys],
            "g_seen": [seen for _, seen in answers],
            **column_arrays([case_values(case) for case, _ in answers], _CASE_COLUMNS, prefix="c_"),
        }
        async with self._oneshot.connect() as conn:
            rows = (await conn.execute(_ANSWERS_PG, params)).all()
        return [None if not moved else bool(written) for moved, written in rows]

    async def open_cases(self, registration_township: str | None = None) -> list[Case]:
        query = select(cases.c.data).where(cases.c.state.in_(OPEN_STATE_VALUES))
        if registration_township is not None:
            query = query.where(cases.c.responsible_township == registration_township)  # the township that must reply
        return await self._bulk_cases(query)

    async def cases_to_advance(self, now: datetime) -> list[Case]:
        query = select(cases.c.data).where(cases.c.next_change_at <= now.astimezone(timezone.utc))
        return await self._bulk_cases(query)

    async def cases_in_months(self, months: Iterable[ReportingMonth]) -> list[Case]:
        labels = [str(m) for m in months]
        return await self._bulk_cases(select(cases.c.data).where(cases.c.reporting_month.in_(labels)))

    async def facts_in_months(self, months: Iterable[ReportingMonth]) -> list[CaseFacts]:
        labels = [str(m) for m in months]
        query = select(*_FACT_COLUMNS).where(cases.c.reporting_month.in_(labels))
        return await self._bulk(query, _FactsReader(naive_times=is_sqlite(str(self.engine.url))))

    async def facts_from_whole_cases(self, months: Iterable[ReportingMonth]) -> list[CaseFacts]:
        labels = [str(m) for m in months]
        query = select(cases.c.data).where(cases.c.reporting_month.in_(labels))
        # Each batch of whole cases is reduced to facts at once: a province's quarter of whole cases
        # would take 9 GiB held together.
        return await self._bulk(query, _facts_of_whole_cases)

    async def overdue_cases(self, region_prefix: str, month: ReportingMonth, now: datetime) -> list[Case]:
        low, high = township_range(region_prefix)
        query = (
            select(cases.c.data)
            .where(
                cases.c.reporting_month == str(month),
                cases.c.responsible_township.between(low, high),
                cases.c.state.in_(_OPEN),
                # By the deadline, not the stored state: a tick may not yet have marked it overdue.
                cases.c.due_at <= now.astimezone(timezone.utc),
            )
            .order_by(cases.c.due_at, cases.c.case_id)
        )
        return _cases(await self._select(query))

    async def charges(self, registration_township: str | None = None) -> list[MissedManagementCharge]:
        query = select(missed_management.c.data).order_by(missed_management.c.id)
        if registration_township is not None:
            query = query.where(missed_management.c.registration_township == registration_township)
        return [CHARGE.validate_json(row[0]) for row in await self._select(query)]  # type: ignore[index]

    async def unclosed_months(self) -> list[ReportingMonth]:
        closed = select(period_closures.c.period)
        rows = await self._select(
            select(cases.c.reporting_month).where(cases.c.reporting_month.not_in(closed)).distinct()
        )
        return sorted(ReportingMonth.parse(row[0]) for row in rows)  # type: ignore[index]

    async def first_case_month(self) -> ReportingMonth | None:
        rows = await self._select(select(func.min(cases.c.reporting_month)))  # "2026-03" sorts as the months do
        first = rows[0][0] if rows else None  # type: ignore[index]
        return None if first is None else ReportingMonth.parse(first)

    async def latest_deadlines(self, months: Iterable[ReportingMonth]) -> dict[ReportingMonth, datetime]:
        wanted = [str(m) for m in months]
        if not wanted:
            return {}
        c = cases.c
        counted = or_(c.withdrawn_at.is_(None), c.answered_at.is_not(None))
        rows = await self._select(
            select(c.reporting_month, func.max(c.due_at))
            .where(c.reporting_month.in_(wanted), counted).group_by(c.reporting_month)
        )
        return {ReportingMonth.parse(month): _utc(due) for month, due in rows if due is not None}  # type: ignore[misc]

    async def events_dated(self, first: date, last: date) -> list[EventFact]:
        """Notifications of kinds ①–④ whose event is dated `first` … `last` (ix_cases_event), with the residence
        township (the recipient of a to-residence notification, else the sender)."""
        c = cases.c
        rows = await self._select(
            select(c.case_id, c.residence_township, c.notification_kind, c.event_date, c.received_at, c.answered_at,
                   c.withdrawn_at)
            .where(c.event_date.between(first.isoformat(), last.isoformat()), c.notification_kind.in_(sorted(EVENT_KINDS)))
        )
        return [EventFact(case_id, residence, kind, date.fromisoformat(day), _utc(received),
                          _utc(answered) if answered is not None else None, _utc(withdrawn) if withdrawn is not None else None)
                for case_id, residence, kind, day, received, answered, withdrawn in rows]  # type: ignore[misc]

    async def month_closures(self, months: Iterable[ReportingMonth] | None = None) -> dict[ReportingMonth, datetime]:
        query = select(period_closures.c.period, period_closures.c.closed_at)
        if months is not None:
            query = query.where(period_closures.c.period.in_([str(m) for m in months]))
        out: dict[ReportingMonth, datetime] = {}
        for period, closed_at in await self._select(query):  # type: ignore[misc]
            if "Q" not in period:
                out[ReportingMonth.parse(period)] = _utc(closed_at)  # type: ignore[assignment]
        return out

    async def _close(self, snapshot: AccountingSnapshot) -> None:
        async with self._write() as conn:
            await conn.execute(
                insert(period_closures).values(
                    period=snapshot.period,
                    closed_at=snapshot.closed_at,
                    inputs_digest=snapshot.inputs_digest,
                    snapshot=SNAPSHOT.dump_json(snapshot).decode(),
                )
            )

    async def close_month(self, snapshot: AccountingSnapshot) -> None:
        await self._close(snapshot)

    async def close_quarter(self, snapshot: AccountingSnapshot) -> None:
        await self._close(snapshot)

    async def quarter_snapshot(self, quarter: Quarter) -> AccountingSnapshot | None:
        return await self.period_snapshot(str(quarter))

    async def period_snapshot(self, period: str) -> AccountingSnapshot | None:
        """The frozen accounting of a closed month ("2026-03") or quarter ("2026Q1")."""
        rows = await self._select(select(period_closures.c.snapshot).where(period_closures.c.period == period))
        return SNAPSHOT.validate_json(rows[0][0]) if rows else None  # type: ignore[index]

    async def add_task(self, task: ReverificationTask) -> None:
        row = {"query_id": task.query_id, "residence_township": task.residence_township,
               "state": task.state.value, "data": TASK.dump_json(task).decode()}
        try:
            await insert_rows(self.engine, reverification_tasks, [row])  # one autocommit statement on PostgreSQL
        except IntegrityError:
            pass  # the same 查无此人 delivered again: the task exists

    async def resubmit_task(self, task: ReverificationTask) -> bool:
        """Link the corrected query to the task, only while it is open: of two corrections sent at once,
        the first to commit is the link; False for the other."""
        async with self._write() as conn:
            written = await conn.execute(
                update(reverification_tasks)
                .where(reverification_tasks.c.query_id == task.query_id, reverification_tasks.c.state == TaskState.OPEN.value)
                .values(state=task.state.value, data=TASK.dump_json(task).decode())
            )
        return written.rowcount == 1

    async def save_task(self, task: ReverificationTask) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(reverification_tasks)
                .where(reverification_tasks.c.query_id == task.query_id)
                .values(state=task.state.value, data=TASK.dump_json(task).decode())
            )

    async def get_task(self, query_id: str) -> ReverificationTask | None:
        rows = await self._select(select(reverification_tasks.c.data).where(reverification_tasks.c.query_id == query_id))
        return TASK.validate_json(rows[0][0]) if rows else None  # type: ignore[index]

    async def tasks(self, residence_township: str) -> list[ReverificationTask]:
        rows = await self._select(
            select(reverification_tasks.c.data).where(reverification_tasks.c.residence_township == residence_township)
        )
        return [TASK.validate_json(row[0]) for row in rows]  # type: ignore[index]


    async def reminders(self, township: str) -> list[tuple[datetime, Reminder]]:
        rows = await self._select(
            select(reminders.c.sent_at, reminders.c.data).where(reminders.c.township == township).order_by(reminders.c.id)
        )
        return [(_utc(at), REMINDER.validate_json(data)) for at, data in rows]  # type: ignore[misc]

