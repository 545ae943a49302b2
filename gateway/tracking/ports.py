"""The tracking store port; the SQL adapter is gateway/adapters/sql/case_store.py, the fake beside it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from gateway.workflow.accounting import AccountingSnapshot
from gateway.workflow.case_facts import CaseFacts
from gateway.workflow.cases import Case
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.reminders import Reminder
from gateway.workflow.reverification import ReverificationTask
from gateway.workflow.strikes import MissedManagementCharge, StrikeKey


REGION_CODE_LENGTHS = (2, 4, 6, 9)  # province, city, county, township


def township_range(region_prefix: str) -> tuple[str, str]:
    """The first and last 9-digit township codes under a division code, e.g. 430181 → 430181000..430181999."""
    if len(region_prefix) not in REGION_CODE_LENGTHS or not region_prefix.isdigit():
        raise ValueError(f"a region is a 2, 4, 6 or 9-digit division code, got {region_prefix!r}")
    return region_prefix.ljust(9, "0"), region_prefix.ljust(9, "9")


class StrikeConflict(Exception):
    """A 漏管 charge would name a query that is evidence of another charge: nothing was written."""


class CaseStore(Protocol):
    async def get_case(self, case_id: str) -> Case | None: ...

    async def add_case(self, case: Case) -> bool:
        """Insert a new case; False when it exists already (opening a case is idempotent)."""

    async def add_cases(self, cases: list[Case]) -> None:
        """Insert new cases together; any that exist already are left as they are."""

    async def existing_case_ids(self, case_ids: list[str]) -> set[str]: ...

    async def save_cases(self, cases: Iterable[Case]) -> None: ...

    async def ledger_version(self, key: StrikeKey) -> int:
        """How many answers of this person's strike ledger were written with a version check (0: none)."""

    async def save_answer(
        self, case: Case, charge: MissedManagementCharge | None, *, ledger_version: int | None = None
    ) -> bool:
        """The answered case and its 漏管 charge, if any, in one transaction; written only while the
        stored case has no reply (nor withdrawal): False, and nothing written, otherwise. Raises
        StrikeConflict, writing nothing, when a query of the charge is evidence of another one, or when
        ``ledger_version`` is given and the person's ledger is no longer at that version."""

    async def save_withdrawal(self, case: Case) -> bool:
        """The withdrawn case, written only while the stored one has no reply nor withdrawal (the
        answer's conditional write): False, and nothing written, otherwise."""

    async def cases_for_key(self, key: StrikeKey) -> list[Case]: ...

    async def answer_contexts(self, case_ids: Sequence[str]) -> dict[str, tuple[Case, int, list[Case]]]:
        """``answer_context`` for many cases in one read (two statements); the cases found, by id."""

    async def save_answers(self, answers: Sequence[tuple[Case, int]]) -> list[bool | None]:
        """Answered cases without a 漏管 charge, each with the strike-ledger version its reply was computed
        at, in one transaction. Per case: True when written; False when the stored case had its reply
        already (nothing of it written); None when the person's ledger is no longer at that version
        (nothing of it written: compute again). One transaction; one case's verdict never undoes
        another's. (A case whose ledger moved but that had its reply already may leave the ledger one
        version further: that only makes a concurrent reply of the person compute again.)"""

    async def answer_context(self, case_id: str) -> tuple[Case | None, int, list[Case]]:
        """What recording a reply needs, in one read: the case; the version of its person's strike
        ledger, read *before* the cases (an answer of the same person written after it makes
        ``save_answer`` at that version fail, so the tracker computes again); and every case of the
        case's strike key, the case itself included. (None, 0, []) when there is no such case."""

    async def open_cases(self, registration_township: str | None = None) -> list[Case]:
        """Open cases, or those a township must reply to (its responsible township: the recipient,
        which is the registration township but for a to-residence notification)."""

    async def cases_to_advance(self, now: datetime) -> list[Case]:
        """The open cases whose `next_change_at` has come by `now` (what a tick has to look at)."""

    async def cases_in_months(self, months: Iterable[ReportingMonth]) -> list[Case]: ...

    async def facts_in_months(self, months: Iterable[ReportingMonth]) -> list[CaseFacts]:
        """The accounting facts of every case of these months (what a close reads; see case_facts)."""

    async def facts_from_whole_cases(self, months: Iterable[ReportingMonth]) -> list[CaseFacts]:
        """The same facts, derived from each whole stored case rather than read from where the store
        keeps them for closing: what an audit recomputes from."""

    async def overdue_cases(self, region_prefix: str, month: ReportingMonth, now: datetime) -> list[Case]:
        """Open cases of reporting month `month` whose deadline had passed at `now`, for the townships
        under `region_prefix` (a province, city, county or township code; by the township that must
        reply), longest overdue first
        (by deadline, then case id). Judged by the deadline, whatever state was last stored."""

    async def charges(self, registration_township: str | None = None) -> list[MissedManagementCharge]: ...

    async def unclosed_months(self) -> list[ReportingMonth]:
        """Reporting months that have cases but no closure yet."""

    async def first_case_month(self) -> ReportingMonth | None:
        """The earliest reporting month with a case (None: no case at all): where closing by the
        calendar starts, with the earliest closure."""

    async def latest_deadlines(self, months: Iterable[ReportingMonth]) -> dict[ReportingMonth, datetime]:
        """The latest deadline in force of each month's counted cases (a case withdrawn before any reply
        is not counted); months without such a case are absent (gateway.workflow.finality)."""

    async def month_closures(self, months: Iterable[ReportingMonth] | None = None) -> dict[ReportingMonth, datetime]: ...

    async def close_month(self, snapshot: AccountingSnapshot) -> None: ...

    async def quarter_snapshot(self, quarter: Quarter) -> AccountingSnapshot | None: ...

    async def close_quarter(self, snapshot: AccountingSnapshot) -> None: ...

    async def add_task(self, task: ReverificationTask) -> None: ...

    async def save_task(self, task: ReverificationTask) -> None: ...

    async def resubmit_task(self, task: ReverificationTask) -> bool:
        """Save the task as resubmitted only while the stored one is open; False otherwise."""

    async def get_task(self, query_id: str) -> ReverificationTask | None: ...

    async def tasks(self, residence_township: str) -> list[ReverificationTask]: ...

    async def save_advanced(self, cases: Iterable[Case], reminders: Iterable[Reminder], at: datetime) -> None:
        """What a tick did, in one transaction: the cases it moved and the reminders it sent at `at`
        (a reminder is recorded as sent exactly when its case says so)."""

    async def reminders(self, township: str) -> list[tuple[datetime, Reminder]]: ...
