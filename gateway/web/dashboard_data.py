"""The supervisors' dashboard read model: figures, lists and trend of a region, read from the database.

One module with one job, so the figures can be swapped when the accounting changes (issue 13): the
rules are those of `gateway.workflow.accounting` (`outcome_as_of`, pooled sums, `Counts`).

* A period that is closed is read from its frozen snapshot (`period_closures`), never recounted:
  snapshots never change, so each is parsed once per process, and filtered once per region.
* An open period is read from the tallies the database keeps as cases change (revision 0010,
  `gateway/adapters/sql/tally_store.py`): a few thousand rows for a province's month, not its hundreds of
  thousands of cases. They count as `accounting.account` does (rules "3": an answer is judged by its
  deadline alone), every fact stored included; whether a case without a reply is overdue is decided
  from its deadline at the request's instant.
* An open period is provisional (gateway.workflow.finality): `progress` says how many of the region's
  cases are still open before their deadline (from the live figures) and when the period will be final
  at the latest, from the latest deadline of each month's cases (the dashboard index, no JSON; kept a
  minute per month).
* Cases are counted for the township that must reply (`responsible_township`: the registration
  township for queries and residence-side notifications, the residence township for a to_residence
  notification); queries and notifications apart (rule 十三: the feedback rate is over the queries).
* The lists are scoped by the region's division-code range on `responsible_township`; the 逾期未反馈
  list reads the open cases in deadline order (`ix_cases_open_due`, revision 0008), never the cases' JSON.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.tally_store import TallyStore
from gateway.adapters.sql.workflow_tables import OPEN_STATE_VALUES, cases, missed_management, period_closures
from gateway.tracking.ports import township_range
from gateway.tracking.serialization import CHARGE, SNAPSHOT
from gateway.workflow.accounting import AccountingSnapshot, Counts
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.finality import MonthProgress, PeriodProgress, records_begin
from gateway.workflow.instants import SHANGHAI
from gateway.workflow.periods import Quarter, ReportingMonth, reporting_month_of, served

Period = ReportingMonth | Quarter


def parse_period(text: str) -> Period:
    """`2026-11` (a reporting month) or `2026Q4` (a quarter); ValueError with the reason otherwise."""
    text = text.strip()
    if "Q" in text.upper():
        return served(Quarter.parse(text))
    return served(ReportingMonth.parse(text))


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


_FIELDS = attrgetter(*(f.name for f in fields(Counts)))


def sum_counts(counts: Iterable[Counts]) -> Counts:
    """The sum of many counts (a province's 1,500 townships, often): field by field, not `Counts.__add__`."""
    totals = [sum(column) for column in zip(*map(_FIELDS, counts))]
    return Counts(*totals) if totals else Counts()


# Regions whose rows of a snapshot are kept filtered (a province gateway's supervisors look at a few dozen).
_FROZEN_KEPT = 256
# How long a month's progress (its latest deadline, the region's cases not due yet) is kept: a page reads a
# province's month of cases for it, and after the cutoff only a calendar update moves a deadline.
_PROGRESS_KEPT = timedelta(minutes=1)


class DashboardReader:
    """A region's figures for a period: a closed period's from its frozen snapshot, an open one's from the
    tallies the database keeps (`TallyStore`), as of the request's instant."""

    def __init__(self, engine: AsyncEngine, calendar: WorkingDayCalendar) -> None:
        self.engine = engine
        self.calendar = calendar
        self.tallies = TallyStore(engine)
        self._snapshots: dict[str, AccountingSnapshot] = {}  # frozen: safe to keep for the process
        # (period, region) -> its townships' rows and their total: a snapshot's rows are filtered once per region.
        self._frozen: OrderedDict[tuple[str, str], tuple[dict[str, Counts], Counts]] = OrderedDict()
        self._charges: dict[int, MissedCase] = {}  # 漏管 charges by row id (a few hundred a quarter in a province)
        # month -> (read at, the latest deadline of its cases then)
        self._progress: OrderedDict[ReportingMonth, tuple[datetime, datetime | None]] = OrderedDict()

    # --- closures and snapshots -------------------------------------------------------------------

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

    async def _frozen_counts(self, period: str, prefix: str) -> tuple[dict[str, Counts], Counts] | None:
        """A closed period's rows under `prefix`, and their total; None when it has no snapshot."""
        key = (period, prefix)
        found = self._frozen.get(key)
        if found is None:
            snapshot = await self._snapshot(period)
            if snapshot is None:
                return None
            rows = {t: n for t, n in snapshot.rows if t.startswith(prefix)}
            found = self._frozen[key] = (rows, sum_counts(rows.values()))
            if len(self._frozen) > _FROZEN_KEPT:
                self._frozen.popitem(last=False)
        else:
            self._frozen.move_to_end(key)
        return found

    async def closures(self) -> dict[str, datetime]:
        """Every closed period and when it closed (a few rows a month): read once per page."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(period_closures.c.period, period_closures.c.closed_at))).all()
        return {p: _utc(at) for p, at in rows}

    async def records_begin(self, now: datetime, closures: dict[str, datetime]) -> ReportingMonth:
        """The first month the gateway accounts for (gateway.workflow.finality.records_begin): its earliest case
        or month closed; a period before it is final and empty, never closed by the tracker."""
        async with self.engine.connect() as conn:
            first = (await conn.execute(select(func.min(cases.c.reporting_month)))).scalar()
        known = [ReportingMonth.parse(p) for p in closures if "Q" not in p]
        known += [ReportingMonth.parse(first)] if first is not None else []
        return records_begin(min(known, default=None), now)

    # --- counts ----------------------------------------------------------------------------------

    async def township_counts(self, prefix: str, period: Period, as_of: datetime,
                              closures: dict[str, datetime] | None = None) -> dict[str, Counts]:
        """Counts per responsible township under `prefix` for `period`: frozen when closed, else live."""
        closures = await self.closures() if closures is None else closures
        if str(period) in closures and (frozen := await self._frozen_counts(str(period), prefix)) is not None:
            return frozen[0]
        return await self.tallies.counts(prefix, months_of(period), _utc(as_of))

    async def trend(self, prefix: str, last: ReportingMonth, as_of: datetime, months: int = 12,
                    closures: dict[str, datetime] | None = None,
                    known: dict[ReportingMonth, Counts] | None = None) -> list[tuple[ReportingMonth, Counts]]:
        """The region's total per reporting month for the `months` months ending with `last`: closed months
        from their snapshots, `known` ones as given (the page's own month), the others in one read of the tallies."""
        closures = await self.closures() if closures is None else closures
        wanted = [last]
        while len(wanted) < months:
            wanted.insert(0, wanted[0].previous())
        totals: dict[ReportingMonth, Counts] = dict(known or {})
        for m in wanted:
            if m in totals:
                continue
            if str(m) in closures and (frozen := await self._frozen_counts(str(m), prefix)) is not None:
                totals[m] = frozen[1]
        live = [m for m in wanted if m not in totals]
        counted = await self.tallies.month_totals(prefix, live, _utc(as_of))
        return [(m, totals[m] if m in totals else counted.get(str(m), Counts())) for m in wanted]

    async def progress(self, period: Period, now: datetime, not_due: int,
                       closures: dict[str, datetime] | None = None) -> PeriodProgress:
        """How far the period is from final: `not_due`, the region's cases still open before their deadline (its
        未到期 count, from the live figures), and per month not closed the latest deadline of all its cases (the
        month closes for every region at once), read from the dashboard index and kept a minute per month."""
        closures = await self.closures() if closures is None else closures
        now = _utc(now)
        out = []
        for month in months_of(period):
            if str(month) in closures:
                out.append(MonthProgress(month, max(now, month.next().ends_at), 0, None))  # closed: final
                continue
            kept = self._progress.get(month)
            if kept is None or not timedelta(0) <= now - kept[0] < _PROGRESS_KEPT:
                kept = self._progress[month] = (now, await self._latest_deadline(month))
                if len(self._progress) > _FROZEN_KEPT:
                    self._progress.popitem(last=False)
            out.append(MonthProgress(month, now, 0, kept[1]))
        return PeriodProgress(tuple(out), not_due)

    async def _latest_deadline(self, month: ReportingMonth) -> datetime | None:
        c = cases.c
        counted = or_(c.withdrawn_at.is_(None), c.answered_at.is_not(None))  # as the accounting counts
        async with self.engine.connect() as conn:
            latest = (await conn.execute(
                select(func.max(c.due_at)).where(c.reporting_month == str(month), counted))).scalar()
        return None if latest is None else _utc(latest)

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

    async def overdue_count(self, prefix: str, period: Period, now: datetime) -> int:
        """How many cases of the period are without a reply and past their deadline now (from the tallies:
        counting a province's list in SQL reads tens of thousands of rows)."""
        return await self.tallies.overdue_total(prefix, months_of(period), _utc(now))

    async def overdue(self, prefix: str, period: Period, now: datetime, limit: int = 200,
                      total: int | None = None) -> tuple[list[OverdueCase], int]:
        """Cases of the period still without a reply and past their deadline (逾期未反馈): oldest first,
        at most `limit` of them, and how many there are (`total`, when the caller has counted them live)."""
        c = cases.c
        low, high = township_range(prefix)
        rows: list[Any] = []
        async with self.engine.connect() as conn:
            # Month by month, each read in deadline order and cut at `limit` (ix_cases_open_due), then merged.
            for month in months_of(period):
                rows += (await conn.execute(
                    select(c.case_id, c.kind, c.residence_township, c.registration_township, c.due_at)
                    .where(c.reporting_month == str(month), c.responsible_township.between(low, high),
                           c.state.in_(OPEN_STATE_VALUES), c.kind != "", c.due_at <= _utc(now))
                    .order_by(c.due_at, c.case_id).limit(limit)
                )).all()
        rows = sorted(rows, key=lambda r: (_utc(r[4]), r[0]))
        if len(rows) < limit:
            total = len(rows)
        elif total is None:
            total = await self.overdue_count(prefix, period, now)
        rows = rows[:limit]
        memo: dict[datetime, int] = {}
        out = []
        for case_id, kind, residence, registration, due_at in rows:
            due = _utc(due_at)
            if due not in memo:
                memo[due] = self.working_days_between(due, now)
            out.append(OverdueCase(case_id, kind, residence, registration, due, memo[due]))
        return out, total

    async def missed(self, prefix: str, period: Period, limit: int = 200) -> tuple[list[MissedCase], int]:
        """漏管 charged in the period against townships under `prefix`, with the three query ids."""
        mm = missed_management.c
        low, high = township_range(prefix)
        start, end = period.starts_at, period.ends_at
        where = (mm.registration_township.between(low, high), mm.charged_at >= start, mm.charged_at < end)
        async with self.engine.connect() as conn:
            total = int((await conn.execute(select(func.count()).select_from(missed_management).where(*where))).scalar() or 0)
            ids = [i for (i,) in (await conn.execute(
                select(mm.id).where(*where).order_by(mm.charged_at.desc(), mm.id.desc()).limit(limit)
            )).all()]
            # A charge is written once and never changed: each is decoded once per process.
            unseen = [i for i in ids if i not in self._charges]
            if unseen:
                for i, text in (await conn.execute(select(mm.id, mm.data).where(mm.id.in_(unseen)))).all():
                    charge = CHARGE.validate_json(text)
                    self._charges[i] = MissedCase(charge.registration_township, charge.key.residence_township,
                                                  _utc(charge.charged_at), tuple(charge.evidence_query_ids))
        return [self._charges[i] for i in ids], total


def current_period(now: datetime, quarter: bool = False) -> Period:
    month = reporting_month_of(now)
    return month.quarter if quarter else month


def today_cst(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()
