"""In-memory fake of the tracking store (gateway/tracking/ports.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from gateway.tracking.ports import StrikeConflict, township_range
from gateway.workflow.accounting import AccountingSnapshot
from gateway.workflow.case_facts import CaseFacts, facts_of
from gateway.workflow.cases import Case
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.reminders import Reminder
from gateway.workflow.reverification import ReverificationTask, TaskState
from gateway.workflow.strikes import MissedManagementCharge, StrikeKey


class FakeCaseStore:
    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self.charge_list: list[MissedManagementCharge] = []
        self.snapshots: dict[str, AccountingSnapshot] = {}
        self.task_map: dict[str, ReverificationTask] = {}
        self.sent_reminders: list[tuple[datetime, Reminder]] = []
        self.ledger_versions: dict[StrikeKey, int] = {}

    async def get_case(self, case_id: str) -> Case | None:
        return self.cases.get(case_id)

    async def add_case(self, case: Case) -> bool:
        if case.case_id in self.cases:
            return False
        self.cases[case.case_id] = case
        return True

    async def add_cases(self, cases: list[Case]) -> None:
        for case in cases:
            await self.add_case(case)

    async def existing_case_ids(self, case_ids: list[str]) -> set[str]:
        return {c for c in case_ids if c in self.cases}

    async def save_cases(self, cases: Iterable[Case]) -> None:
        for case in cases:
            self.cases[case.case_id] = case

    async def ledger_version(self, key: StrikeKey) -> int:
        return self.ledger_versions.get(key, 0)

    async def save_answer(
        self, case: Case, charge: MissedManagementCharge | None, *, ledger_version: int | None = None
    ) -> bool:
        stored = self.cases.get(case.case_id)
        if stored is not None and (stored.feedback is not None or stored.withdrawn_at is not None):
            return False  # as the SQL store's conditional write: one reply per case
        # Checks first, then writes: like the SQL transaction, a conflict writes nothing.
        if ledger_version is not None and self.ledger_versions.get(case.strike_key, 0) != ledger_version:
            raise StrikeConflict(f"the strike ledger of {case.registration_township} moved meanwhile")
        if charge is not None and {q for c in self.charge_list for q in c.evidence_query_ids} & set(charge.evidence_query_ids):
            raise StrikeConflict(f"a query of {list(charge.evidence_query_ids)} is evidence of a charge already")
        if ledger_version is not None:
            self.ledger_versions[case.strike_key] = ledger_version + 1
        if charge is not None:
            self.charge_list.append(charge)
        self.cases[case.case_id] = case
        return True

    async def save_withdrawal(self, case: Case) -> bool:
        stored = self.cases.get(case.case_id)
        if stored is None or stored.feedback is not None or stored.withdrawn_at is not None:
            return False  # as the SQL store's conditional write
        self.cases[case.case_id] = case
        return True

    async def cases_for_key(self, key: StrikeKey) -> list[Case]:
        return [c for c in self.cases.values() if c.strike_key == key]

    async def answer_contexts(self, case_ids: Sequence[str]) -> dict[str, tuple[Case, int, list[Case]]]:
        out = {}
        for case_id in case_ids:
            case, version, of_key = await self.answer_context(case_id)
            if case is not None:
                out[case_id] = (case, version, of_key)
        return out

    async def save_answers(self, answers: Sequence[tuple[Case, int]]) -> list[bool | None]:
        verdicts: list[bool | None] = []
        for case, seen in answers:
            if self.ledger_versions.get(case.strike_key, 0) != seen:
                verdicts.append(None)
                continue
            self.ledger_versions[case.strike_key] = seen + 1
            stored = self.cases.get(case.case_id)
            if stored is None or stored.feedback is not None or stored.withdrawn_at is not None:
                verdicts.append(False)
                continue
            self.cases[case.case_id] = case
            verdicts.append(True)
        return verdicts

    async def answer_context(self, case_id: str) -> tuple[Case | None, int, list[Case]]:
        case = self.cases.get(case_id)
        if case is None:
            return None, 0, []
        return case, await self.ledger_version(case.strike_key), await self.cases_for_key(case.strike_key)

    async def open_cases(self, registration_township: str | None = None) -> list[Case]:
        return [c for c in self.cases.values() if c.is_open and registration_township in (None, c.responsible_township)]

    async def cases_to_advance(self, now: datetime) -> list[Case]:
        return [c for c in self.cases.values() if c.next_change_at is not None and c.next_change_at <= now]

    async def cases_in_months(self, months: Iterable[ReportingMonth]) -> list[Case]:
        wanted = set(months)
        return [c for c in self.cases.values() if c.reporting_month in wanted]

    async def facts_in_months(self, months: Iterable[ReportingMonth]) -> list[CaseFacts]:
        return [facts_of(c) for c in await self.cases_in_months(months)]

    async def facts_from_whole_cases(self, months: Iterable[ReportingMonth]) -> list[CaseFacts]:
        return await self.facts_in_months(months)  # the fake keeps only whole cases

    async def overdue_cases(self, region_prefix: str, month: ReportingMonth, now: datetime) -> list[Case]:
        low, high = township_range(region_prefix)
        found = [
            c for c in self.cases.values()
            if c.is_open and c.reporting_month == month and low <= c.responsible_township <= high
            and now >= c.deadline.due_at
        ]
        return sorted(found, key=lambda c: (c.deadline.due_at, c.case_id))

    async def charges(self, registration_township: str | None = None) -> list[MissedManagementCharge]:
        return [c for c in self.charge_list if registration_township in (None, c.registration_township)]

    async def unclosed_months(self) -> list[ReportingMonth]:
        return sorted({c.reporting_month for c in self.cases.values() if str(c.reporting_month) not in self.snapshots})

    async def first_case_month(self) -> ReportingMonth | None:
        return min((c.reporting_month for c in self.cases.values()), default=None)

    async def latest_deadlines(self, months: Iterable[ReportingMonth]) -> dict[ReportingMonth, datetime]:
        wanted = set(months)
        out: dict[ReportingMonth, datetime] = {}
        for c in self.cases.values():
            if c.reporting_month not in wanted or (c.withdrawn_at is not None and c.feedback is None):
                continue
            month = c.reporting_month
            out[month] = max(out.get(month, c.deadline.due_at), c.deadline.due_at)
        return out

    async def month_closures(self, months: Iterable[ReportingMonth] | None = None) -> dict[ReportingMonth, datetime]:
        wanted = None if months is None else {str(m) for m in months}
        return {
            ReportingMonth.parse(p): s.closed_at
            for p, s in self.snapshots.items()
            if "Q" not in p and (wanted is None or p in wanted)
        }

    async def close_month(self, snapshot: AccountingSnapshot) -> None:
        self.snapshots[snapshot.period] = snapshot

    async def close_quarter(self, snapshot: AccountingSnapshot) -> None:
        self.snapshots[snapshot.period] = snapshot

    async def quarter_snapshot(self, quarter: Quarter) -> AccountingSnapshot | None:
        return self.snapshots.get(str(quarter))

    async def add_task(self, task: ReverificationTask) -> None:
        self.task_map.setdefault(task.query_id, task)

    async def resubmit_task(self, task: ReverificationTask) -> bool:
        stored = self.task_map.get(task.query_id)
        if stored is None or stored.state is not TaskState.OPEN:
            return False
        self.task_map[task.query_id] = task
        return True

    async def save_task(self, task: ReverificationTask) -> None:
        self.task_map[task.query_id] = task

    async def get_task(self, query_id: str) -> ReverificationTask | None:
        return self.task_map.get(query_id)

    async def tasks(self, residence_township: str) -> list[ReverificationTask]:
        return [t for t in self.task_map.values() if t.residence_township == residence_township]

    async def save_advanced(self, cases: Iterable[Case], reminders: Iterable[Reminder], at: datetime) -> None:
        await self.save_cases(cases)
        self.sent_reminders.extend((at, reminder) for reminder in reminders)

    async def reminders(self, township: str) -> list[tuple[datetime, Reminder]]:
        return [(at, r) for at, r in self.sent_reminders if r.township == township]
