"""The case tracker: the workflow rules (R1–R5) applied to the messages the gateway exchanges.

- The registration township's gateway opens a case when it accepts a query or notification, and
  records the reply when its clerk answers: on time or late, 查无此人, three strikes → 漏管.
- The residence township's gateway opens a re-verification task when a 查无此人 arrives, and closes it
  when the clerk submits the corrected query (``resubmission_of``).
- ``tick`` moves open cases to due-soon / overdue, delivers reminders, and closes the reporting months
  (and then quarters) that have become final (``gateway.workflow.finality``: every deadline of their
  cases passed, by the next 20th at the latest), freezing their accounting; quiet months too.

Every hook is idempotent, and the reconcile (reconcile.py) runs them again, at start-up and on every
tick, for any message stored but not tracked, so a crash between storing a message and tracking it
loses nothing: cases are always derivable from the stored messages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from gateway.clock import Clock
from gateway.group_commit import GroupRunner
from gateway.codec.messages import Feedback, Notification, Query, Withdrawal
from gateway.exchange.records import StoredMessage
from gateway.tracking.ports import CaseStore, StrikeConflict
from gateway.workflow.accounting import ClosingAt, close_quarter
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.case_facts import CaseFacts
from gateway.workflow.cases import (
    Case,
    Direction,
    evaluate,
    mark_reminder_sent,
    open_case,
    recompute_open_deadlines,
    resubmission_problem,
    withdraw,
)
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.feedback_handling import FeedbackOutcome, handle_feedback, rebuild_ledger
from gateway.workflow.finality import final_at, records_begin
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.reminders import Reminder, reminders_due
from gateway.workflow.reverification import ReverificationTask, TaskState
from gateway.workflow.strikes import StrikeKey

log = logging.getLogger(__name__)

_STRIKE_RETRIES = 5
# A month past its cutoff waits for its cases' latest deadline: read once, and again after this long (a
# calendar update on another gateway sharing the database may move it) and always just before closing.
_DEADLINES_KEPT = timedelta(hours=1)

# The codec's 查无此人 reason codes (schemas/codes/not_found_reason.json) in the workflow's terms.
NOT_FOUND_REASONS = {
    "1": NoSuchPersonReason.WRONG_ADDRESS,
    "2": NoSuchPersonReason.WRONG_NAME,
    "3": NoSuchPersonReason.WRONG_ID_NUMBER,
    "9": NoSuchPersonReason.OTHER,
}


def case_kind(message: Query | Notification) -> CaseKind:
    if isinstance(message, Notification):
        return CaseKind.NOTIFICATION
    return CaseKind.BIRTH_QUERY if message.about_birth else CaseKind.QUERY


def case_roles(stored: StoredMessage, message: Query | Notification) -> dict[str, object]:
    """Who is who, and a notification's dates, read from the message: the recipient must reply."""
    direction = Direction(message.direction) if isinstance(message, Notification) else Direction.TO_REGISTRATION
    residence, registration = stored.sender, stored.recipient
    if direction is Direction.TO_RESIDENCE:
        residence, registration = stored.recipient, stored.sender
    event_date = message.event_date if isinstance(message, Notification) else None
    learned_on = message.learned_on if isinstance(message, Notification) else None
    if learned_on is not None and learned_on < event_date:
        # The codec refuses this; a record that got past it must not stop the consumer: the case is
        # judged from the event date, and the operator is told which message it was.
        log.warning("notification %s: learned_on %s is before its event; judged from the event date",
                    stored.message_id, learned_on)
        learned_on = None
    return {
        "residence_township": residence,
        "registration_township": registration,
        "direction": direction,
        "event_date": event_date,
        "learned_on": learned_on,
        "notification_kind": message.notification_kind if isinstance(message, Notification) else None,
    }


def feedback_result(feedback: Feedback) -> FeedbackResult:
    return FeedbackResult.FOUND if feedback.result == "found" else FeedbackResult.NO_SUCH_PERSON


@dataclass
class TickReport:
    moved: int = 0
    reminders: list[Reminder] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)


class CaseTracker:
    def __init__(
        self, store: CaseStore, clock: Clock, calendar: WorkingDayCalendar, rules: DeadlineRuleSet
    ) -> None:
        self.store = store
        self.clock = clock
        self.calendar = calendar
        self.rules = rules
        self._answers: GroupRunner[tuple[StoredMessage, Feedback], Case | None] = GroupRunner(self._record_answers)
        # month -> (its latest deadline or None, when read): see `_months_final`.
        self._deadlines: dict[ReportingMonth, tuple[datetime | None, datetime]] = {}

    # --- the registration township's side ---------------------------------------------------------

    async def query_received(self, stored: StoredMessage, message: Query | Notification) -> Case:
        existing = await self.store.get_case(stored.message_id)
        if existing is not None:
            return existing
        earlier_id = getattr(message, "resubmission_of", None)
        earlier = await self.store.get_case(earlier_id) if earlier_id else None
        roles = case_roles(stored, message)
        note = None
        if earlier_id:
            # A correction this gateway cannot continue (the earlier query is unknown here, unanswered,
            # answered found, not a query, or another township's) still has to be answered and counted:
            # it opens a plain case, outside the chain, and says why. Raising here would nack the
            # delivery until it reached the poison queue, and the query would be missing from every figure.
            if earlier is None:
                problem = f"no case {earlier_id} here"
            elif earlier.sender_township != stored.sender:
                problem = "only the residence township that sent a query can re-submit it"
            else:
                problem = resubmission_problem(earlier, roles["residence_township"])  # type: ignore[arg-type]
            if problem is not None:
                # A correction sent to another registration township (the address was wrong) is that
                # township's first sight of her: no case here is expected, the rest is not.
                level = logging.INFO if earlier is None else logging.WARNING
                earlier = None
                note = f"resubmission_of {earlier_id} not linked: {problem}"
                log.log(level, "query %s from %s: %s; tracked as a plain case", stored.message_id, stored.sender, note)
        case = open_case(
            stored.message_id,
            case_kind(message),
            roles.pop("residence_township"),  # type: ignore[arg-type]
            roles.pop("registration_township"),  # type: ignore[arg-type]
            stored.subject or "",
            stored.accepted_at,
            self.rules,
            self.calendar,
            resubmits=earlier,
            note=note,
            **roles,  # type: ignore[arg-type]
        )
        case = evaluate(case, self.clock.now())
        await self.store.add_case(case)
        return case

    async def query_withdrawn(self, stored: StoredMessage, withdrawal: Withdrawal) -> Case | None:
        """The residence township withdrew a query this township received: its case is closed as
        withdrawn (not counted), unless a reply was recorded first — then the reply stands."""
        case = await self.store.get_case(withdrawal.withdraws)
        if case is None or not case.is_open or case.residence_township != stored.sender:
            return None
        closed = withdraw(case, stored.accepted_at)
        return closed if await self.store.save_withdrawal(closed) else None

    async def queries_received(self, items: list[tuple[StoredMessage, Query | Notification]]) -> None:
        """``query_received`` for a batch: one lookup and one insert for all of them."""
        existing = await self.store.existing_case_ids([stored.message_id for stored, _ in items])
        now = self.clock.now()
        new: list[Case] = []
        for stored, message in items:
            if stored.message_id in existing:
                continue
            if getattr(message, "resubmission_of", None):
                await self.query_received(stored, message)  # rare: needs the earlier case
                continue
            roles = case_roles(stored, message)
            case = open_case(stored.message_id, case_kind(message), roles.pop("residence_township"),  # type: ignore[arg-type]
                             roles.pop("registration_township"), stored.subject or "", stored.accepted_at,  # type: ignore[arg-type]
                             self.rules, self.calendar, **roles)  # type: ignore[arg-type]
            new.append(evaluate(case, now))
        await self.store.add_cases(new)

    async def answered(self, stored: StoredMessage, feedback: Feedback) -> Case | None:
        """Record a reply this gateway's clerk sent. Concurrent replies are recorded together
        (``_record_answers``): one read and one transaction for a group, instead of one each."""
        return await self._answers((stored, feedback))

    async def _record_answers(self, items: Sequence[tuple[StoredMessage, Feedback]]) -> list[Case | None | BaseException]:
        """The replies of a group, round by round. The store decides every race (one reply per case, one
        strike per query, the person's ledger at the version read): a reply that lost one is computed
        again from what is stored, in the next round; two replies about one person go in separate
        rounds. A reply that brings a 漏管 charge is saved alone, with its charge (``save_answer``)."""
        results: dict[int, Case | None | BaseException] = {}
        attempts = [0] * len(items)
        todo = list(range(len(items)))
        while todo:
            contexts = await self.store.answer_contexts([items[i][1].in_reply_to for i in todo])
            this_round: list[tuple[int, Case, int, FeedbackOutcome]] = []
            later: list[int] = []
            keys: set[StrikeKey] = set()
            for i in todo:
                stored, feedback = items[i]
                context = contexts.get(feedback.in_reply_to)
                if context is None:
                    log.warning("feedback %s answers %s, which has no case", stored.message_id, feedback.in_reply_to)
                    results[i] = None
                    continue
                case, version, of_key = context
                if not case.is_open:
                    results[i] = case  # already recorded (a replay of this hook, or another reply won)
                    continue
                if case.strike_key in keys:
                    later.append(i)  # the same person twice in a group: after the first is stored
                    continue
                keys.add(case.strike_key)
                this_round.append((i, case, version, await self._outcome(stored, feedback, case, of_key)))
            plain = [entry for entry in this_round if entry[3].charge is None]
            verdicts = await self.store.save_answers([(outcome.case, version) for _, _, version, outcome in plain])
            for (i, case, _, outcome), verdict in zip(plain, verdicts):
                if verdict is None:
                    later.append(i)  # the person's ledger moved meanwhile: computed again
                else:
                    results[i] = outcome.case if verdict else await self.store.get_case(case.case_id)
            for i, case, version, outcome in this_round:
                if outcome.charge is None:
                    continue
                try:
                    saved = await self.store.save_answer(outcome.case, outcome.charge, ledger_version=version)
                except StrikeConflict:
                    later.append(i)
                    continue
                results[i] = outcome.case if saved else await self.store.get_case(case.case_id)
            todo = []
            for i in later:
                attempts[i] += 1
                if attempts[i] > _STRIKE_RETRIES:
                    results[i] = StrikeConflict(f"the strike ledger of {items[i][1].in_reply_to} kept moving")
                else:
                    log.info("strike ledger of %s moved meanwhile; recomputing", items[i][1].in_reply_to)
                    todo.append(i)
        return [results[i] for i in range(len(items))]

    async def _outcome(self, stored: StoredMessage, feedback: Feedback, case: Case, of_key: list[Case]) -> FeedbackOutcome:
        # The ledger of the person's other answered queries: this one counts once, as its own answer.
        ledger = rebuild_ledger(c for c in of_key if c.case_id != case.case_id)
        return handle_feedback(
            evaluate(case, stored.accepted_at),
            ledger,
            stored.accepted_at,
            feedback_result(feedback),
            reason=NOT_FOUND_REASONS.get(feedback.not_found_reason or ""),
            remarks=feedback.remarks or "",
            message_id=stored.message_id,
        )

    # --- the residence township's side ------------------------------------------------------------

    async def feedback_received(self, stored: StoredMessage, feedback: Feedback, query: StoredMessage | None) -> None:
        if feedback.result != "not_found":
            return
        await self.store.add_task(
            ReverificationTask(
                task_id=f"reverify:{feedback.in_reply_to}",
                residence_township=stored.recipient,
                registration_township=stored.sender,
                citizen_id=(query.subject if query else None) or "",
                query_id=feedback.in_reply_to,
                opened_at=stored.accepted_at,
                reason=NOT_FOUND_REASONS.get(feedback.not_found_reason or ""),
                remarks=feedback.remarks or "",
            )
        )

    async def query_sent(self, stored: StoredMessage, message: Query | Notification) -> None:
        earlier_id = getattr(message, "resubmission_of", None)
        if not earlier_id:
            return
        task = await self.store.get_task(earlier_id)
        if task is not None and task.state is TaskState.OPEN:
            await self.store.resubmit_task(
                replace(task, state=TaskState.RESUBMITTED, resubmitted_as=stored.message_id,
                        resubmitted_at=stored.accepted_at)
            )

    # --- time passing -----------------------------------------------------------------------------

    async def tick(self) -> TickReport:
        now = self.clock.now()
        report = TickReport()
        report.moved, report.reminders = await self.advance_cases(now)
        report.closed = await self.close_due_periods(now)
        return report

    async def advance_cases(self, now: datetime) -> tuple[int, list[Reminder]]:
        """Move the cases time has changed (due soon, overdue) and send their reminders."""
        # Only those: a province gateway has hundreds of thousands of open cases.
        ripe = await self.store.cases_to_advance(now)
        evaluated = [evaluate(c, now) for c in ripe]
        due = reminders_due(evaluated, now)
        by_id = {c.case_id: c for c in evaluated}
        for reminder in due:
            by_id[reminder.case_id] = mark_reminder_sent(by_id[reminder.case_id], reminder.kind.value)
        changed = [c for c, before in zip(by_id.values(), ripe) if c != before]
        await self.store.save_advanced(changed, due, now)
        return len(changed), due

    async def close_due_periods(self, now: datetime) -> list[str]:
        """Close every reporting month that has become final (and then its quarter, with its last month);
        R1, R5 and issue 23: by the calendar, with or without cases."""
        return await self._close_due_periods(now)

    async def _months_past_cutoff(self, now: datetime) -> list[ReportingMonth]:
        """The months not closed yet whose cutoff has passed, oldest first: every month from the first the
        gateway knows (its earliest case or closure; on a store with neither, the month before this one)."""
        closed = await self.store.month_closures()
        first = await self.store.first_case_month()
        known = [*closed, *([first] if first is not None else [])]
        month = records_begin(min(known) if known else None, now)  # the months before it never close: no case
        out = []
        while month.ends_at <= now:
            if month not in closed:
                out.append(month)
            month = month.next()
        return out

    async def _months_final(self, months: list[ReportingMonth], now: datetime) -> list[ReportingMonth]:
        """Those of `months` that are final at `now` (gateway.workflow.finality), judged on a fresh read."""
        stale = [m for m in months if m not in self._deadlines or now - self._deadlines[m][1] >= _DEADLINES_KEPT]
        if stale:
            latest = await self.store.latest_deadlines(stale)
            self._deadlines.update({m: (latest.get(m), now) for m in stale})
        ripe = [m for m in months if now >= final_at(m, self._deadlines[m][0])]
        fresh = [m for m in ripe if m not in stale]
        if fresh:  # a kept deadline says it is time: make sure before freezing anything
            latest = await self.store.latest_deadlines(fresh)
            self._deadlines.update({m: (latest.get(m), now) for m in fresh})
            ripe = [m for m in months if now >= final_at(m, self._deadlines[m][0])]
        for m in ripe:
            self._deadlines.pop(m, None)
        return ripe

    async def _close_due_periods(self, now: datetime) -> list[str]:
        closed: list[str] = []
        loaded: dict[ReportingMonth, list[CaseFacts]] = {}
        closing = ClosingAt(now)

        async def facts_of_months(months: tuple[ReportingMonth, ...]) -> list[CaseFacts]:
            # Each month is read once per tick; its quarter reuses it.
            for m in months:
                if m not in loaded:
                    loaded[m] = await self.store.facts_in_months([m])
            return [f for m in months for f in loaded[m]]

        for month in await self._months_final(await self._months_past_cutoff(now), now):
            await self.store.close_month(closing.month(await facts_of_months((month,)), month))
            closed.append(str(month))
            quarter = month.quarter
            if month == quarter.months[-1] and await self.store.quarter_snapshot(quarter) is None:
                closures = await self.store.month_closures(quarter.months)
                await self.store.close_quarter(closing.quarter(await facts_of_months(quarter.months), quarter, closures))
                closed.append(str(quarter))
                loaded.clear()
        return closed

    async def calendar_updated(self, calendar: WorkingDayCalendar) -> int:
        """A new calendar (e.g. next year's schedule): recompute open deadlines only, never closed ones."""
        self.calendar = calendar
        self._deadlines.clear()  # open deadlines may move: the months waiting for them are read again
        open_cases = await self.store.open_cases()
        updated = recompute_open_deadlines(open_cases, calendar, self.clock.now())
        changed = [c for c, before in zip(updated, open_cases) if c != before]
        await self.store.save_cases(changed)
        return len(changed)

    async def recompute_quarter(self, quarter: Quarter):  # type: ignore[no-untyped-def]
        """Recompute a closed quarter from the stored cases, as an auditor would (R5 reproducibility).

        From the whole stored cases, not the fact columns the close read: the audit checks those too."""
        stored = await self.store.quarter_snapshot(quarter)
        if stored is None:
            return None, None
        closures = await self.store.month_closures(quarter.months)
        facts = await self.store.facts_from_whole_cases(quarter.months)
        again = close_quarter(facts, quarter, stored.closed_at, closures, stored.rules_version)
        return stored, again

