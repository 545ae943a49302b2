"""Ports: what the workflow commands read cases through, plus an in-memory implementation.

The SQL adapter (gateway/adapters/sql/case_source.py) implements `CaseSource`; `InMemoryCaseSource`
serves tests and small tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from gateway.workflow.accounting import AccountingSnapshot, close_month, close_quarter
from gateway.workflow.case_facts import CaseFacts
from gateway.workflow.cases import Case
from gateway.workflow.events import EventFact, event_of
from gateway.workflow.periods import Quarter, ReportingMonth


class CaseSource(Protocol):
    def cases_for_quarter(self, quarter: Quarter) -> Iterable[Case | CaseFacts]:
        """Every case whose reporting month is in `quarter` (withdrawn ones included), or its facts."""
        ...

    def facts_in_months(self, months: Iterable[ReportingMonth]) -> Iterable[Case | CaseFacts]:
        """Every case of these reporting months, or its facts (e.g. the month after a period, whose
        corrected queries complete the period's re-visits)."""
        ...

    def month_closures(self, quarter: Quarter) -> Mapping[ReportingMonth, datetime]:
        """When each closed month of `quarter` was closed (UTC); open months are absent."""
        ...

    def quarter_snapshot(self, quarter: Quarter) -> AccountingSnapshot | None:
        """The frozen accounting of `quarter`, or None while it is still open."""
        ...

    def period_snapshot(self, period: ReportingMonth | Quarter) -> AccountingSnapshot | None:
        """The frozen accounting of a closed month or quarter, or None while it is open."""
        ...

    def first_known_month(self) -> ReportingMonth | None:
        """The earliest month with a case or a closure, where the gateway's records begin (None: neither yet)."""
        ...

    def events_dated(self, first: date, last: date) -> Iterable[EventFact]:
        """The notifications of kinds ①–④ whose event is dated `first` … `last` (gateway.workflow.events)."""
        ...


@dataclass
class InMemoryCaseSource:
    cases: list[Case] = field(default_factory=list)
    closures: dict[ReportingMonth, datetime] = field(default_factory=dict)
    quarter_closures: dict[Quarter, datetime] = field(default_factory=dict)

    def cases_for_quarter(self, quarter: Quarter) -> Iterable[Case]:
        months = set(quarter.months)
        return [c for c in self.cases if c.reporting_month in months]

    def facts_in_months(self, months: Iterable[ReportingMonth]) -> Iterable[Case]:
        wanted = set(months)
        return [c for c in self.cases if c.reporting_month in wanted]

    def month_closures(self, quarter: Quarter) -> Mapping[ReportingMonth, datetime]:
        return {m: t for m, t in self.closures.items() if m in quarter.months}

    def quarter_snapshot(self, quarter: Quarter) -> AccountingSnapshot | None:
        closed_at = self.quarter_closures.get(quarter)
        if closed_at is None:
            return None
        return close_quarter(self.cases_for_quarter(quarter), quarter, closed_at, self.month_closures(quarter))

    def period_snapshot(self, period: ReportingMonth | Quarter) -> AccountingSnapshot | None:
        if isinstance(period, Quarter):
            return self.quarter_snapshot(period)
        closed_at = self.closures.get(period)
        return None if closed_at is None else close_month(self.facts_in_months([period]), period, closed_at)

    def first_known_month(self) -> ReportingMonth | None:
        return min([*(c.reporting_month for c in self.cases), *self.closures], default=None)

    def events_dated(self, first: date, last: date) -> Iterable[EventFact]:
        found = (event_of(c) for c in self.cases)
        return [e for e in found if e is not None and first <= e.event_date <= last]
