"""The supervisors' dashboard read model: figures, lists and trend of a region, read from the database.

One module with one job, so the figures can be swapped when the accounting changes (issue 13): the
rules are those of `gateway.workflow.accounting` (`outcome_as_of`, pooled sums, `Counts`), written
here as SQL aggregates so a province of 2 million cases is counted by the database, not in Python.

* A period that is closed is read from its frozen snapshot (`period_closures`), never recounted:
  snapshots never change, so each is parsed once per process.
* An open period is counted live, as of now, with the closures of its months that are already
  closed (an answer after its month's close counts as late), exactly as `accounting.account` does.
  The case's current deadline (`due_at`) is the deadline in force now.
* Every query is scoped by the region's division-code range on `registration_township` and reads
  the covering index `ix_cases_dashboard` (revision 0010), never the cases' JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, func, literal, not_, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.workflow_tables import OPEN_STATE_VALUES, cases, missed_management, period_closures
from gateway.tracking.ports import township_range
from gateway.tracking.serialization import CHARGE, SNAPSHOT
from gateway.workflow.accounting import AccountingSnapshot, Counts
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.instants import SHANGHAI
from gateway.workflow.periods import Quarter, ReportingMonth, reporting_month_of

Period = ReportingMonth | Quarter


def parse_period(text: str) -> Period:
    """`2026-11` (a reporting month) or `2026Q4` (a quarter); ValueError with the reason otherwise."""
    text = text.strip()
    if "Q" in text.upper():
        return Quarter.parse(text)
    return ReportingMonth.parse(text)


def months_of(period: Period) -> tuple[ReportingMonth, ...]:
    return period.months if isinstance(period, Quarter) else (period,)


@dataclass(frozen=True)
class OverdueCase:
    case_id: str
    kind: str
    residence_township: str
    registration_township: str
    due_at: datetime
    working_days_overdue: int


@dataclass(frozen=True)
class MissedCase:
    registration_township: str
    residence_township: str
    charged_at: datetime
    query_ids: tuple[str, ...]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _count(condition: object) -> object:
    return func.sum(sql_case((condition, 1), else_=0))


class DashboardReader:
    def __init__(self, engine: AsyncEngine, calendar: WorkingDayCalendar) -> None:
        self.engine = engine
        self.calendar = calendar
        self._snapshots: dict[str, AccountingSnapshot] = {}  # frozen: safe to keep for the process

    # --- closures and snapshots -------------------------------------------------------------------

    async def _closures(self, periods: Iterable[str]) -> dict[str, datetime]:
        labels = list(periods)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(period_closures.c.period, period_closures.c.closed_at).where(period_closures.c.period.in_(labels))
            )).all()
        return {p: _utc(at) for p, at in rows}

    async def _snapshot(self, period: str) -> AccountingSnapshot | None:
        found = self._snapshots.get(period)
        if found is None:
            async with self.engine.connect() as conn:
                text = (await conn.execute(
                    select(period_closures.c.snapshot).where(period_closures.c.period == period)
                )).scalar()
            if text is None:
                return None
            found = self._snapshots[period] = SNAPSHOT.validate_json(text)
        return found

    # --- counts ----------------------------------------------------------------------------------

    def _live_query(self, prefix: str, months: list[ReportingMonth], closures: dict[str, datetime],
                    as_of: datetime, group: object) -> object:
        c = cases.c
        as_of_p = literal(as_of)
        answered = and_(c.answered_at.is_not(None), c.answered_at <= as_of_p)
        withdrawn = and_(c.withdrawn_at.is_not(None), c.withdrawn_at <= as_of_p)
        counted = and_(c.received_at <= as_of_p, or_(answered, not_(withdrawn)))
        # A reply after its month's close counts as late (accounting.outcome_as_of).
        after_close = or_(literal(False), *(
            and_(c.reporting_month == str(m), c.answered_at >= literal(closures[str(m)]))
            for m in months if str(m) in closures))
        late = and_(counted, answered, or_(c.answered_at >= c.due_at, after_close))
        on_time = and_(counted, answered, c.answered_at < c.due_at, not_(after_close))
        low, high = township_range(prefix)
        return (
            select(
                group,
                _count(counted), _count(and_(counted, answered)), _count(on_time), _count(late),
                _count(and_(counted, not_(answered), c.due_at <= as_of_p)),
                _count(and_(counted, not_(answered), c.due_at > as_of_p)),
                _count(and_(counted, answered, c.result == "no_such_person")),
                _count(and_(counted, c.charged_at.is_not(None), c.charged_at <= as_of_p)),
            )
            .where(c.reporting_month.in_([str(m) for m in months]), c.registration_township.between(low, high))
            .group_by(group)
        )

    async def township_counts(self, prefix: str, period: Period, as_of: datetime) -> dict[str, Counts]:
        """Counts per registration township under `prefix` for `period`: frozen when closed, else live."""
        snapshot = await self._snapshot(str(period))
        if snapshot is not None:
            return {t: n for t, n in snapshot.rows if t.startswith(prefix)}
        months = list(months_of(period))
        closures = await self._closures(str(m) for m in months)
        query = self._live_query(prefix, months, closures, _utc(as_of), cases.c.registration_township)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()  # type: ignore[call-overload]
        return {r[0]: Counts(*(int(x or 0) for x in r[1:])) for r in rows if r[1]}

    async def trend(self, prefix: str, last: ReportingMonth, as_of: datetime, months: int = 12) -> list[tuple[ReportingMonth, Counts]]:
        """The region's total per reporting month for the `months` months ending with `last`."""
        wanted = [last]
        while len(wanted) < months:
            wanted.insert(0, wanted[0].previous())
        out: dict[ReportingMonth, Counts] = {}
        live: list[ReportingMonth] = []
        for m in wanted:
            snapshot = await self._snapshot(str(m))
            if snapshot is None:
                live.append(m)
            else:
                out[m] = sum((n for t, n in snapshot.rows if t.startswith(prefix)), Counts())
        if live:
            query = self._live_query(prefix, live, {}, _utc(as_of), cases.c.reporting_month)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()  # type: ignore[call-overload]
            found = {r[0]: Counts(*(int(x or 0) for x in r[1:])) for r in rows}
            for m in live:
                out[m] = found.get(str(m), Counts())
        return [(m, out[m]) for m in wanted]

    # --- lists -----------------------------------------------------------------------------------

    def working_days_between(self, due_at: datetime, now: datetime) -> int:
        """Working days from the deadline (24:00 of its last day) up to and including today, Beijing time."""
        day = due_at.astimezone(SHANGHAI).date()
        today = now.astimezone(SHANGHAI).date()
        n = 0
        while day <= today:
            n += self.calendar.is_working_day(day)
            day += timedelta(days=1)
        return n

    async def overdue(self, prefix: str, period: Period, now: datetime, limit: int = 200) -> tuple[list[OverdueCase], int]:
        """Cases of the period still without a reply and past their deadline (逾期未反馈): oldest first."""
        c = cases.c
        low, high = township_range(prefix)
        where = (
            c.reporting_month.in_([str(m) for m in months_of(period)]),
            c.registration_township.between(low, high),
            c.state.in_(OPEN_STATE_VALUES),
            c.due_at <= _utc(now),
        )
        async with self.engine.connect() as conn:
            total = int((await conn.execute(select(func.count()).select_from(cases).where(*where))).scalar() or 0)
            rows = (await conn.execute(
                select(c.case_id, c.kind, c.residence_township, c.registration_township, c.due_at)
                .where(*where).order_by(c.due_at, c.case_id).limit(limit)
            )).all()
        memo: dict[datetime, int] = {}
        out = []
        for case_id, kind, residence, registration, due_at in rows:
            due = _utc(due_at)
            if due not in memo:
                memo[due] = self.working_days_between(due, now)
            out.append(OverdueCase(case_id, kind, residence, registration, due, memo[due]))
        return out, total

    async def missed(self, prefix: str, period: Period) -> list[MissedCase]:
        """漏管 charged in the period against townships under `prefix`, with the three query ids."""
        mm = missed_management.c
        low, high = township_range(prefix)
        start, end = period.starts_at, period.ends_at
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(mm.data).where(mm.registration_township.between(low, high),
                                      mm.charged_at >= start, mm.charged_at < end).order_by(mm.charged_at, mm.id)
            )).all()
        out = []
        for (text,) in rows:
            charge = CHARGE.validate_json(text)
            out.append(MissedCase(charge.registration_township, charge.key.residence_township,
                                  _utc(charge.charged_at), tuple(charge.evidence_query_ids)))
        return out


def current_period(now: datetime, quarter: bool = False) -> Period:
    month = reporting_month_of(now)
    return month.quarter if quarter else month


def today_cst(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()
