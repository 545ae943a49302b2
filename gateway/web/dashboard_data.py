"""The supervisors' dashboard read model: figures, lists and trend of a region, read from the database.

One module with one job, so the figures can be swapped when the accounting changes (issue 13): the
rules are those of `gateway.workflow.accounting` (`outcome_as_of`, pooled sums, `Counts`), written
here as SQL aggregates so a province of 2 million cases is counted by the database, not in Python.

* A period that is closed is read from its frozen snapshot (`period_closures`), never recounted:
  snapshots never change, so each is parsed once per process.
* An open period is counted live, as of now, with the closures of its months that are already
  closed (an answer after its month's close counts as late), exactly as `accounting.account` does.
  The case's current deadline (`due_at`) is the deadline in force now.
* Cases are counted for the township that must reply (`responsible_township`: the registration
  township for queries and residence-side notifications, the residence township for a to_residence
  notification); queries and notifications apart (rule 十三: the feedback rate is over the queries).
* Every query is scoped by the region's division-code range on `responsible_township` and reads
  the covering index `ix_cases_dashboard` (revision 0008), never the cases' JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta, timezone

from typing import Any

from sqlalchemy import and_, func, literal, not_, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.workflow_tables import OPEN_STATE_VALUES, cases, missed_management, period_closures
from gateway.tracking.ports import township_range
from gateway.tracking.serialization import CHARGE, SNAPSHOT
from gateway.workflow.accounting import AccountingSnapshot, Counts
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.deadlines import CaseKind
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


_FIELDS = tuple(f.name for f in fields(Counts))


def sum_counts(counts: Iterable[Counts]) -> Counts:
    """The sum of many counts (a province's 1,500 townships, often): plain integers, not `Counts.__add__`."""
    totals = [0] * len(_FIELDS)
    for c in counts:
        for i, name in enumerate(_FIELDS):
            totals[i] += getattr(c, name)
    return Counts(*totals)


def _count(condition: object) -> object:
    return func.sum(sql_case((condition, 1), else_=0))


@dataclass
class MonthTally:
    """One reporting month's cases counted by township, as of `computed_at`, in a form that stays exact
    as time passes: what no longer changes with time (received, answered, on time, 查无此人, 漏管) summed,
    and the cases still without a reply counted by their deadline, so that overdue or still open is
    decided at the instant of the request. Answers given after `computed_at` appear at the next recount."""

    computed_at: datetime
    closed_at: datetime | None  # the month's close it was counted with (answers after it are late)
    # township -> [queries received, answered, on time, 查无此人, 漏管,
    #              notifications received, answered, on time]
    settled: dict[str, list[int]]
    # township -> (is a notification, deadline) -> cases without a reply
    open_due: dict[str, dict[tuple[bool, datetime], int]]

    def counts(self, prefix: str, now: datetime) -> dict[str, Counts]:
        out = {}
        for township, (received, answered, on_time, nsp, mm, n_received, n_answered, n_on_time) in self.settled.items():
            if not township.startswith(prefix) or not (received or n_received):
                continue
            dues = self.open_due.get(township, {})
            overdue = sum(n for (notification, due), n in dues.items() if not notification and due <= now)
            n_overdue = sum(n for (notification, due), n in dues.items() if notification and due <= now)
            out[township] = Counts(
                received, answered, on_time, answered - on_time, overdue, received - answered - overdue, nsp, mm,
                n_received, n_answered, n_on_time, n_answered - n_on_time, n_overdue,
                n_received - n_answered - n_overdue,
            )
        return out


class DashboardReader:
    """`max_age`: how old a month's tally may get before it is recounted (in the background, the old
    one served meanwhile): a province's open month is hundreds of thousands of cases, counted in
    about a second, so pages do not count them on every request."""

    def __init__(self, engine: AsyncEngine, calendar: WorkingDayCalendar, *, max_age_s: float = 30.0,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.calendar = calendar
        self.max_age = timedelta(seconds=max_age_s)
        self.clock_now = clock or (lambda: datetime.now(timezone.utc))
        self._snapshots: dict[str, AccountingSnapshot] = {}  # frozen: safe to keep for the process
        self._tallies: dict[str, MonthTally] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshing: set[str] = set()
        self._background: set[asyncio.Task[MonthTally]] = set()

    def counted_at(self, period: Period) -> datetime | None:
        """When the live figures of `period` were counted (the oldest of its months); None if frozen or not yet."""
        if str(period) in self._snapshots:
            return None
        found = [self._tallies[str(m)].computed_at for m in months_of(period) if str(m) in self._tallies]
        return min(found) if found else None

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

    # --- counts ----------------------------------------------------------------------------------

    async def _tally(self, month: ReportingMonth, closed_at: datetime | None, now: datetime) -> MonthTally:
        """The month's tally, recounted when missing, when its month closed since, or (in the background,
        the old one served meanwhile) when older than `max_age`."""
        key = str(month)
        found = self._tallies.get(key)
        if found is not None and found.closed_at == closed_at:
            if now - found.computed_at > self.max_age and key not in self._refreshing:
                self._refreshing.add(key)
                task = asyncio.get_running_loop().create_task(self._recount(month, closed_at))
                task.add_done_callback(lambda _: self._refreshing.discard(key))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return found
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # concurrent first requests count once
            found = self._tallies.get(key)
            if found is None or found.closed_at != closed_at:
                found = await self._recount(month, closed_at)
        return found

    async def _recount(self, month: ReportingMonth, closed_at: datetime | None) -> MonthTally:
        c = cases.c
        computed_at = self.clock_now()
        at = literal(computed_at)
        # Exact as of `computed_at` even if the table holds later facts (a test's clock, a clock step back).
        answered = and_(c.answered_at.is_not(None), c.answered_at <= at)
        withdrawn = and_(c.withdrawn_at.is_not(None), c.withdrawn_at <= at)
        late_by_close = (c.answered_at >= literal(closed_at)) if closed_at is not None else literal(False)
        open_due = sql_case((answered, None), else_=c.due_at).label("open_due")
        notification = (c.kind == CaseKind.NOTIFICATION.value).label("notification")
        query = (
            select(
                c.responsible_township, notification, open_due, func.count(),
                _count(answered), _count(and_(answered, c.answered_at < c.due_at, not_(late_by_close))),
                _count(and_(answered, c.result == "no_such_person")),
                _count(and_(c.charged_at.is_not(None), c.charged_at <= at)),
            )
            .where(c.reporting_month == str(month), or_(answered, not_(withdrawn)), c.received_at <= at)
            .group_by(c.responsible_township, notification, open_due)
        )
        tally = MonthTally(computed_at, closed_at, {}, {})
        async with self.engine.connect() as conn:
            for township, is_notification, due, n, n_answered, n_on_time, n_nsp, n_mm in (await conn.execute(query)).all():
                is_notification = bool(is_notification)
                settled = tally.settled.setdefault(township, [0] * 8)
                base = 5 if is_notification else 0
                settled[base] += n
                settled[base + 1] += n_answered or 0
                settled[base + 2] += n_on_time or 0
                if not is_notification:
                    settled[3] += n_nsp or 0  # 查无此人 is counted for the queries only, as accounting does
                settled[4] += n_mm or 0
                if due is not None:
                    dues = tally.open_due.setdefault(township, {})
                    key = (is_notification, _utc(due))
                    dues[key] = dues.get(key, 0) + n - (n_answered or 0)
        self._tallies[str(month)] = tally
        return tally

    async def closures(self) -> dict[str, datetime]:
        """Every closed period and when it closed (a few rows a month): read once per page."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(period_closures.c.period, period_closures.c.closed_at))).all()
        return {p: _utc(at) for p, at in rows}

    async def township_counts(self, prefix: str, period: Period, as_of: datetime,
                              closures: dict[str, datetime] | None = None) -> dict[str, Counts]:
        """Counts per responsible township under `prefix` for `period`: frozen when closed, else live."""
        closures = await self.closures() if closures is None else closures
        if str(period) in closures:
            snapshot = await self._snapshot(str(period))
            if snapshot is not None:
                return {t: n for t, n in snapshot.rows if t.startswith(prefix)}
        now = _utc(as_of)
        rows: dict[str, Counts] = {}
        for month in months_of(period):
            tally = await self._tally(month, closures.get(str(month)), now)
            for township, counts in tally.counts(prefix, now).items():
                rows[township] = rows[township] + counts if township in rows else counts
        return rows

    async def trend(self, prefix: str, last: ReportingMonth, as_of: datetime, months: int = 12,
                    closures: dict[str, datetime] | None = None) -> list[tuple[ReportingMonth, Counts]]:
        """The region's total per reporting month for the `months` months ending with `last`."""
        closures = await self.closures() if closures is None else closures
        wanted = [last]
        while len(wanted) < months:
            wanted.insert(0, wanted[0].previous())
        out = []
        for m in wanted:
            out.append((m, sum_counts((await self.township_counts(prefix, m, as_of, closures)).values())))
        return out

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

    async def overdue_count(self, prefix: str, period: Period, now: datetime,
                            closures: dict[str, datetime] | None = None) -> int:
        """How many cases of the period are without a reply and past their deadline now (from the tallies:
        counting a province's list in SQL reads tens of thousands of rows)."""
        closures = await self.closures() if closures is None else closures
        now = _utc(now)
        total = 0
        for month in months_of(period):
            tally = await self._tally(month, closures.get(str(month)), now)
            total += sum(n for township, dues in tally.open_due.items() if township.startswith(prefix)
                         for (_, due), n in dues.items() if due <= now)
        return total

    async def overdue(self, prefix: str, period: Period, now: datetime, limit: int = 200) -> tuple[list[OverdueCase], int]:
        """Cases of the period still without a reply and past their deadline (逾期未反馈): oldest first,
        at most `limit` of them, and how many there are."""
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
        total = len(rows) if len(rows) < limit else await self.overdue_count(prefix, period, now)
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
            rows = (await conn.execute(
                select(mm.data).where(*where).order_by(mm.charged_at.desc(), mm.id.desc()).limit(limit)
            )).all()
        out = []
        for (text,) in rows:
            charge = CHARGE.validate_json(text)
            out.append(MissedCase(charge.registration_township, charge.key.residence_township,
                                  _utc(charge.charged_at), tuple(charge.evidence_query_ids)))
        return out, total


def current_period(now: datetime, quarter: bool = False) -> Period:
    month = reporting_month_of(now)
    return month.quarter if quarter else month


def today_cst(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()
