"""The workflow's CaseSource (read by `gateway scores`) over the tracker's tables, for command-line use.

CaseSource is synchronous, as the command line is; each call runs its query on a short-lived engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import date, datetime
from typing import TypeVar

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.direct_pg import dispose
from gateway.adapters.sql.engine import create_engine
from gateway.workflow.accounting import AccountingSnapshot
from gateway.workflow.case_facts import CaseFacts
from gateway.workflow.events import EventFact
from gateway.workflow.periods import Quarter, ReportingMonth

T = TypeVar("T")


class SqlCaseSource:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def _run(self, query: Callable[[SqlCaseStore], Awaitable[T]]) -> T:
        async def run() -> T:
            engine = create_engine(self.database_url)
            try:
                return await query(SqlCaseStore(engine))
            finally:
                await dispose(engine)

        return asyncio.run(run())

    def cases_for_quarter(self, quarter: Quarter) -> Iterable[CaseFacts]:
        return self._run(lambda store: store.facts_in_months(quarter.months))

    def facts_in_months(self, months: Iterable[ReportingMonth]) -> Iterable[CaseFacts]:
        wanted = list(months)
        return self._run(lambda store: store.facts_in_months(wanted))

    def month_closures(self, quarter: Quarter) -> Mapping[ReportingMonth, datetime]:
        return self._run(lambda store: store.month_closures(quarter.months))

    def quarter_snapshot(self, quarter: Quarter) -> AccountingSnapshot | None:
        return self._run(lambda store: store.quarter_snapshot(quarter))

    def period_snapshot(self, period: ReportingMonth | Quarter) -> AccountingSnapshot | None:
        return self._run(lambda store: store.period_snapshot(str(period)))

    def first_known_month(self) -> ReportingMonth | None:
        async def first(store: SqlCaseStore) -> ReportingMonth | None:
            known = [*(await store.month_closures()), *filter(None, [await store.first_case_month()])]
            return min(known, default=None)

        return self._run(first)

    def events_dated(self, first: date, last: date) -> Iterable[EventFact]:
        return self._run(lambda store: store.events_dated(first, last))
