"""The dashboard's tallies: the log of case changes folded into counts, and a region's counts read from them.

Which counter a case's facts feed is written once, in `_Counters`, for both the fold and the read: it
is the rule of `gateway.workflow.accounting` (`outcome_as_of`, `_counts_for`) for the facts stored, as of
any instant at or after the latest of them (the gateway's clock; a page never looks into the past):

* received — not withdrawn before a reply; answered — replied (查无此人 too);
* on time — replied before the deadline in force (accounting rules "3": the month's close plays no
  part, so every change can be folded as soon as it is logged);
* 查无此人 — replies that were, queries only (rule 十三); 漏管 — charged on the case;
* open — without a reply and not withdrawn, kept by deadline: overdue or still open is decided at the
  request, from the request's instant (`due_at <= now`), never by the tick.

Folding (`fold`) moves the log into `tallies` and `open_tallies` in one transaction (PostgreSQL: one
statement per month, DELETE … RETURNING feeding both upserts; SQLite: one writer at a time), so each
change is counted exactly once, whoever folds and whatever is written meanwhile. A read (`counts`,
`month_totals`, `overdue_total`) is one statement over the tallies and the rows still in the log, so it
never sees a change twice or not at all, however a fold interleaves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from functools import cache
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.engine import is_sqlite, write_transaction
from gateway.adapters.sql.tally_tables import case_changes, open_tallies, tallies
from gateway.adapters.sql.workflow_tables import period_closures
from gateway.tracking.ports import township_range
from gateway.workflow.accounting import Counts
from gateway.workflow.deadlines import CaseKind
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.instants import SHANGHAI, start_of_local_day
from gateway.workflow.periods import ReportingMonth

log = logging.getLogger(__name__)

_INSTANT = case_changes.c.due_at.type
# pg_try_advisory_xact_lock key of the fold: gateways sharing a database fold one at a time.
FOLD_LOCK_KEY = 0x6777_7461_6C6C_7931  # "gwtally1"
# Deadlines more than a day in the past are merged into one row per township (see `merge_boundary`).
_MERGE_AFTER = timedelta(days=1)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _at(value: datetime | None) -> ColumnElement[Any]:
    """An instant as a typed SQL value (SQLite compares instants as text: the stored format, in UTC)."""
    return null() if value is None else literal(_utc(value), _INSTANT)


class _Counters:
    """What one row of facts adds to each counter: `sign` (+1 or −1) or 0. The rule, written once."""

    def __init__(self, source: Any, closed_at: ColumnElement[Any] | None, sign: ColumnElement[Any]) -> None:
        c = source
        answered = c.answered_at.is_not(None)
        counted = or_(answered, c.withdrawn_at.is_(None))
        self.notification = (c.kind == CaseKind.NOTIFICATION.value)
        self.received = self._when(counted, sign)
        self.answered = self._when(answered, sign)
        # By the deadline alone (rules "3"); `closed_at` is no longer consulted.
        self.on_time = self._when(and_(answered, c.answered_at < c.due_at), sign)
        self.no_such_person = self._when(
            and_(answered, not_(self.notification), c.result == FeedbackResult.NO_SUCH_PERSON.value), sign)
        self.missed_management = self._when(and_(counted, c.charged_at.is_not(None)), sign)
        self.is_open = and_(c.answered_at.is_(None), c.withdrawn_at.is_(None))
        self.open = self._when(self.is_open, sign)

    @staticmethod
    def _when(condition: ColumnElement[bool], sign: ColumnElement[Any]) -> ColumnElement[int]:
        return case((condition, sign), else_=0)

    def settled(self) -> list[ColumnElement[Any]]:
        return [self.received, self.answered, self.on_time, self.no_such_person, self.missed_management]


_SETTLED = ("received", "answered", "on_time", "no_such_person", "missed_management")


def merge_boundary(now: datetime) -> datetime:
    """00:00 CST of the day before `now`'s: open cases due before it are merged into one row due at it.

    Any page at or after it counts such a row overdue, as it would each case in it; a day's margin
    leaves gateways whose clocks differ a little exact around midnight."""
    return start_of_local_day(_utc(now).astimezone(SHANGHAI).date() - _MERGE_AFTER)


def _decided(c: Any, ends_at: datetime, closed_at: datetime | None) -> ColumnElement[bool]:
    """The changes a fold can count now: all of them, since a reply is judged by its deadline alone (rules
    "3"); under the rules before, an answer after the cutoff waited for the month's close."""
    return true()


@cache
def _read_statement(by_month: bool) -> Select[Any]:
    """One statement: the tallies, the open cases due by `:now`, and the log not folded yet, summed per
    township (or month) into the fields of `Counts`. Built once; its parameters are the months, the
    region's code range and the instant."""
    months = bindparam("months", expanding=True)
    low, high, now = bindparam("low"), bindparam("high"), bindparam("now", type_=_INSTANT)
    t, o, c = tallies.c, open_tallies.c, case_changes.c
    key = "reporting_month" if by_month else "responsible_township"
    parts = [
        select(t[key].label("key"), t.notification.label("notification"), t.received, t.answered, t.on_time,
               t.no_such_person, t.missed_management, literal(0).label("overdue"))
        .where(t.reporting_month.in_(months), t.responsible_township.between(low, high)),
        select(o[key], o.notification, *(literal(0) for _ in _SETTLED), o.open)
        .where(o.reporting_month.in_(months), o.responsible_township.between(low, high), o.due_at <= now),
    ]
    closed_at = select(period_closures.c.closed_at).where(period_closures.c.period == c.reporting_month)
    counters = _Counters(c, closed_at.scalar_subquery(), c.sign)
    parts.append(
        select(c[key], counters.notification, *counters.settled(),
               case((and_(counters.is_open, c.due_at <= now), c.sign), else_=0))
        .where(c.reporting_month.in_(months), c.responsible_township.between(low, high)))
    every = union_all(*parts).subquery()
    notification = every.c.notification

    def queries(name: str) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((not_(notification), every.c[name]), else_=0)), 0)

    def notifications(name: str) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((notification, every.c[name]), else_=0)), 0)

    received, answered, on_time, overdue = (queries(n) for n in ("received", "answered", "on_time", "overdue"))
    n_received, n_answered, n_on_time, n_overdue = (notifications(n) for n in ("received", "answered", "on_time", "overdue"))
    fields = [  # in the order of the fields of Counts
        received, answered, on_time, answered - on_time, overdue, received - answered - overdue,
        queries("no_such_person"), func.coalesce(func.sum(every.c.missed_management), 0),
        n_received, n_answered, n_on_time, n_answered - n_on_time, n_overdue, n_received - n_answered - n_overdue,
    ]
    return (select(every.c.key, *fields).group_by(every.c.key)
            .having(or_(received != 0, n_received != 0)))  # as `account`: nothing received, no row


class TallyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._merged_before: datetime | None = None  # the boundary of the last merge this process made

    # --- folding the log ----------------------------------------------------------------------------

    async def fold(self, now: datetime) -> int:
        """Count the logged changes into the tallies and delete them; how many were folded (0 when another
        gateway is folding). `now`: the folding gateway's clock, for merging deadlines long past."""
        boundary = merge_boundary(now)
        sqlite = is_sqlite(str(self.engine.url))
        async with write_transaction(self.engine) as conn:
            if not sqlite:
                locked = (await conn.execute(select(func.pg_try_advisory_xact_lock(FOLD_LOCK_KEY)))).scalar()
                if not locked:
                    return 0
            months = [m for (m,) in (await conn.execute(select(case_changes.c.reporting_month).distinct())).all()]
            closures = dict((await conn.execute(
                select(period_closures.c.period, period_closures.c.closed_at).where(period_closures.c.period.in_(months))
            )).all()) if months else {}
            folded = 0
            for month in months:
                ends_at = ReportingMonth.parse(month).ends_at
                closed_at = _utc(closures[month]) if month in closures else None
                folded += await (self._fold_sqlite if sqlite else self._fold_postgresql)(
                    conn, month, ends_at, closed_at, boundary)
                await conn.execute(delete(open_tallies).where(open_tallies.c.reporting_month == month,
                                                              open_tallies.c.open == 0))
            if self._merged_before != boundary:
                await self._merge_past(conn, boundary, sqlite_insert if sqlite else pg_insert)
        self._merged_before = boundary
        return folded

    def _moved(self, month: str, ends_at: datetime, closed_at: datetime | None) -> ColumnElement[bool]:
        c = case_changes.c
        return and_(c.reporting_month == month, _decided(c, ends_at, closed_at))

    def _upserts(self, source: Any, closed_at: datetime | None, boundary: datetime, where: ColumnElement[bool],
                 insert: Any) -> tuple[Any, Any]:
        """The two upserts of a fold from `source` (the log, or the rows a DELETE returned)."""
        counters = _Counters(source, None if closed_at is None else _at(closed_at), source.sign)
        keys = [source.reporting_month, source.responsible_township, counters.notification.label("notification")]
        settled = select(*keys, *(func.sum(e) for e in counters.settled())).where(where).group_by(*keys[:2], keys[2])
        into_tallies = insert(tallies).from_select(["reporting_month", "responsible_township", "notification", *_SETTLED],
                                                   settled)
        into_tallies = into_tallies.on_conflict_do_update(
            index_elements=[tallies.c.reporting_month, tallies.c.responsible_township, tallies.c.notification],
            set_={name: tallies.c[name] + into_tallies.excluded[name] for name in _SETTLED},
        )
        due = case((source.due_at < _at(boundary), _at(boundary)), else_=source.due_at)
        opened = (select(*keys, type_coerce(due, _INSTANT).label("due_at"), func.sum(counters.open))
                  .where(where, counters.is_open).group_by(*keys[:2], keys[2], due))
        into_open = insert(open_tallies).from_select(
            ["reporting_month", "responsible_township", "notification", "due_at", "open"], opened)
        into_open = into_open.on_conflict_do_update(
            index_elements=[open_tallies.c.reporting_month, open_tallies.c.responsible_township,
                            open_tallies.c.notification, open_tallies.c.due_at],
            set_={"open": open_tallies.c.open + into_open.excluded.open},
        )
        return into_tallies, into_open

    async def _fold_postgresql(self, conn: AsyncConnection, month: str, ends_at: datetime, closed_at: datetime | None,
                               boundary: datetime) -> int:
        # One statement: the rows deleted are exactly the rows counted, whatever commits meanwhile.
        moved = delete(case_changes).where(self._moved(month, ends_at, closed_at)).returning(*case_changes.c).cte("moved")
        into_tallies, into_open = self._upserts(moved.c, closed_at, boundary, true(), pg_insert)
        counted = into_tallies.returning(literal(1)).cte("counted")
        opened = into_open.returning(literal(1)).cte("opened")
        statement = (select(select(func.count()).select_from(moved).scalar_subquery(),
                            select(func.count()).select_from(counted).scalar_subquery(),
                            select(func.count()).select_from(opened).scalar_subquery()))
        return int((await conn.execute(statement)).first()[0])  # type: ignore[index]

    async def _fold_sqlite(self, conn: AsyncConnection, month: str, ends_at: datetime, closed_at: datetime | None,
                           boundary: datetime) -> int:
        # SQLite has one writer: nothing is logged between these statements (the transaction holds the lock).
        c = case_changes.c
        last = (await conn.execute(select(func.max(c.id)).where(c.reporting_month == month))).scalar()
        if last is None:
            return 0
        where = and_(self._moved(month, ends_at, closed_at), c.id <= last)
        into_tallies, into_open = self._upserts(c, closed_at, boundary, where, sqlite_insert)
        await conn.execute(into_tallies)
        await conn.execute(into_open)
        return int((await conn.execute(delete(case_changes).where(where))).rowcount or 0)

    async def _merge_past(self, conn: AsyncConnection, boundary: datetime, insert: Any) -> None:
        """Merge the rows of deadlines before `boundary` into one row due at it, per township and kind: the
        open cases of a month whose deadlines passed are then one row, not one per deadline."""
        o = open_tallies.c
        past = o.due_at < _at(boundary)
        keys = [o.reporting_month, o.responsible_township, o.notification]
        merged = select(*keys, _at(boundary).label("due_at"), func.sum(o.open)).where(past).group_by(*keys)
        into = insert(open_tallies).from_select(["reporting_month", "responsible_township", "notification", "due_at",
                                                 "open"], merged)
        into = into.on_conflict_do_update(index_elements=[*keys, o.due_at], set_={"open": o.open + into.excluded.open})
        # The merged sums are inserted at the boundary (not before it), then the rows they came from deleted,
        # in this transaction (which holds the fold's lock).
        await conn.execute(into)
        await conn.execute(delete(open_tallies).where(past))

    # --- reading --------------------------------------------------------------------------------------

    async def _read(self, by_month: bool, prefix: str, months: Sequence[ReportingMonth], now: datetime) -> dict[str, Counts]:
        if not months:
            return {}
        low, high = township_range(prefix)
        params = {"months": [str(m) for m in months], "low": low, "high": high, "now": _utc(now)}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_read_statement(by_month), params)).all()
        return {key: Counts(*values) for key, *values in rows}  # integers on both databases (sums of integers)

    async def counts(self, prefix: str, months: Sequence[ReportingMonth], now: datetime) -> dict[str, Counts]:
        """Counts per responsible township under `prefix`, for the cases of `months` (summed), at `now`, as
        `accounting.account` gives them (townships that received nothing left out)."""
        return await self._read(False, prefix, months, now)

    async def month_totals(self, prefix: str, months: Sequence[ReportingMonth], now: datetime) -> dict[str, Counts]:
        """The region's total per reporting month ("2026-03": Counts), at `now`."""
        return await self._read(True, prefix, months, now)

    async def overdue_total(self, prefix: str, months: Sequence[ReportingMonth], now: datetime) -> int:
        """How many cases of `months` under `prefix` are without a reply and past their deadline at `now`."""
        totals = (await self._read(True, prefix, months, now)).values()
        return sum(c.overdue + c.notifications_overdue for c in totals)

    async def backlog(self) -> int:
        """Changes logged and not folded yet (for the benchmark and the tests)."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(case_changes))).scalar() or 0)


async def fold_forever(tallies: TallyStore, clock: Callable[[], datetime], interval_s: float) -> None:
    """The gateway's background job: fold the log every `interval_s` (PostgreSQL does the counting; gateways
    sharing a database take turns). A failed fold is rolled back whole and tried again next time."""
    while True:
        try:
            await tallies.fold(clock())
        except Exception:
            log.exception("counting the dashboard's tallies failed; trying again shortly")
        await asyncio.sleep(interval_s)
