"""Cases: every query and notification the gateway accepts, from receipt to its outcome.

A case is owned by the township that must reply (the registration township, 户籍所在地); it is
opened when the gateway accepts the residence township's query or notification.

States
------
Open (a reply is still expected):

* ``awaiting_reply`` — received, reply not yet due soon.
* ``due_soon``       — the reply is due within the warning window (e.g. the last 2 working days).
* ``overdue``        — 24:00 CST of the last working day has passed without a reply.

Closed (final, except the one step no_such_person → missed_management):

* ``answered_on_time`` — *found* reply accepted before its working-day deadline (24:00 CST of the
  last working day), whenever its reporting month closes: a query of the 17th answered on the 22nd
  inside its 10 working days is on time (seed 000 工作制度 二: replies run from the 21st to the next
  20th; seed 002 范文篇9 五(三): 10 / 5 working days). It counts in the month of the query.
* ``answered_late``    — *found* reply accepted at or after the deadline.
* ``no_such_person``   — 查无此人 reply (on time or late: see ``case.feedback.on_time``); the residence
  township gets a re-verification task (`gateway.workflow.reverification`).
* ``missed_management`` — this 查无此人 was the third consecutive one for the same residence township,
  registration township and citizen ID: the registration township is charged one case of 漏管
  (`gateway.workflow.strikes`).
* ``withdrawn`` — the residence township withdrew the query before any reply; it is not counted.

Transitions, each recorded with the instant it took effect and its cause::

    awaiting_reply → due_soon → overdue            (time passing; `evaluate`)
    awaiting_reply | due_soon | overdue → answered_on_time | answered_late | no_such_person
                                                   (`record_feedback`)
    awaiting_reply | due_soon | overdue → withdrawn (`withdraw`)
    no_such_person → missed_management              (`mark_missed_management`)
    overdue → due_soon | awaiting_reply             (only when a calendar update moved the deadline
                                                     later; `recompute_open_deadlines`)

Cases are immutable values: every function returns a new case. Nothing here reads the clock;
`now` / instants are always arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from gateway.workflow.calendar import WorkingDayCalendar, subtract_working_days
from gateway.workflow.deadlines import CaseKind, Deadline, DeadlineRuleSet, compute_deadline, deadline_for
from gateway.workflow.feedback import Feedback, FeedbackResult, NoSuchPersonReason
from gateway.workflow.instants import start_of_local_day, to_utc
from gateway.workflow.periods import ReportingMonth, reporting_month_of
from gateway.workflow.strikes import MissedManagementCharge, StrikeKey


class CaseState(StrEnum):
    AWAITING_REPLY = "awaiting_reply"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    ANSWERED_ON_TIME = "answered_on_time"
    ANSWERED_LATE = "answered_late"
    NO_SUCH_PERSON = "no_such_person"
    MISSED_MANAGEMENT = "missed_management"
    WITHDRAWN = "withdrawn"


OPEN_STATES = frozenset({CaseState.AWAITING_REPLY, CaseState.DUE_SOON, CaseState.OVERDUE})


class Direction(StrEnum):
    """Who sends and who must reply (seed 002, 范文篇10 第二十四条 and 第三十一条)."""

    TO_REGISTRATION = "to_registration"  # 现居住地 → 户籍所在地: every query, most notifications
    TO_RESIDENCE = "to_residence"  # 户籍地向现居住地通报 (第三十一条(二)4): a notification the other way


class CaseTransitionError(ValueError):
    """A transition the rules do not allow (e.g. a second reply to the same query)."""


@dataclass(frozen=True)
class Transition:
    at: datetime  # UTC, when the change took effect
    from_state: CaseState | None
    to_state: CaseState
    cause: str


@dataclass(frozen=True)
class DueSoonWindow:
    """When the due-soon warning starts; kept with the case so `evaluate` needs no calendar."""

    starts_at: datetime
    working_days: int


@dataclass(frozen=True)
class DeadlineChange:
    at: datetime  # UTC, when the new calendar was applied
    deadline: Deadline


@dataclass(frozen=True)
class Case:
    case_id: str  # the query / notification message id
    kind: CaseKind
    residence_township: str  # 现居住地, the sender
    registration_township: str  # 户籍所在地, must reply
    citizen_id: str
    received_at: datetime  # UTC
    reporting_month: ReportingMonth
    original_deadline: Deadline  # as computed at receipt; never changes
    deadline: Deadline  # current; moves only while open, when the calendar changes
    due_soon: DueSoonWindow
    state: CaseState
    history: tuple[Transition, ...]
    feedback: Feedback | None = None
    resubmission_of: str | None = None  # the 查无此人 query this one corrects (rule 五)
    earlier_query_ids: tuple[str, ...] = ()  # the whole chain of corrected queries, oldest first
    # The citizen ID under which this case's strikes run: the one of the first query of its
    # correction chain (rules 六/十二: 同一个信息), even when the correction changed the ID number.
    # None: the case's own citizen ID.
    strike_subject: str | None = None
    direction: Direction = Direction.TO_REGISTRATION
    # A notification's event (通报事项) and the day its sender learned of it: it is due within 5
    # working days of the later (第二十四条: 对应通报信息,应在5个工作日内提交).
    event_date: date | None = None
    learned_on: date | None = None
    # The notification's kind (通报内容, the codec's table notification_kind: "1" birth … "8" other); None for
    # a query and for the notifications tracked before it was kept (revision 0011). Kinds 1–4 are events
    # counted by the statistical year of `event_date` (gateway.workflow.events).
    notification_kind: str | None = None
    submission_due_at: datetime | None = None  # UTC; None for a query
    withdrawn_at: datetime | None = None
    missed_management: MissedManagementCharge | None = None
    reminders_sent: frozenset[str] = frozenset()
    deadline_changes: tuple[DeadlineChange, ...] = ()  # every recomputation, oldest first

    def deadline_as_of(self, instant: datetime) -> Deadline:
        """The deadline in force at `instant`, so a closed period recomputes as it was closed."""
        current = self.original_deadline
        for change in self.deadline_changes:
            if change.at <= instant:
                current = change.deadline
        return current

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def next_change_at(self) -> datetime | None:
        """The first instant at which time alone changes this case: its state moves (`evaluate`) or
        a reminder falls due (`gateway.workflow.reminders.reminders_due`); None when closed or when
        nothing is left to happen. A tick need only look at the cases whose instant has come.

        Assumes the state was brought up to date (`evaluate`) when the case was last changed, as
        every transition here does.
        """
        if not self.is_open:
            return None
        starts, due = self.due_soon.starts_at, self.deadline.due_at
        instants = []
        if self.state is CaseState.AWAITING_REPLY:
            instants.append(min(starts, due))
        elif self.state is CaseState.DUE_SOON:
            instants.append(due)
        # The values of ReminderKind (gateway.workflow.reminders imports this module, not the reverse);
        # tests/workflow/test_next_change.py holds this against reminders_due.
        if "overdue" not in self.reminders_sent:
            instants.append(due)
            if "due_soon" not in self.reminders_sent:
                instants.append(starts)
        return min(instants) if instants else None

    @property
    def responsible_township(self) -> str:
        """The township that must reply: always the message's recipient."""
        return self.residence_township if self.direction is Direction.TO_RESIDENCE else self.registration_township

    @property
    def sender_township(self) -> str:
        return self.registration_township if self.direction is Direction.TO_RESIDENCE else self.residence_township

    @property
    def submitted_on_time(self) -> bool | None:
        """A notification sent within 5 working days of its event (or of learning of it); None for a query."""
        if self.submission_due_at is None:
            return None
        return self.received_at < self.submission_due_at

    @property
    def strike_key(self) -> StrikeKey:
        return StrikeKey(self.residence_township, self.registration_township, self.strike_subject or self.citizen_id)

    @property
    def counts_strikes(self) -> bool:
        """Rules 六/十二 speak of 个案查询信息: only a query's 查无此人 is a strike, never a notification's."""
        return self.kind is not CaseKind.NOTIFICATION


def _check_township(code: str, role: str) -> None:
    if len(code) != 9 or not code.isdigit():
        raise ValueError(f"{role} must be a 9-digit township code, got {code!r}")


def _due_soon_window(calendar: WorkingDayCalendar, deadline: Deadline, working_days: int) -> DueSoonWindow:
    if working_days <= 0:
        return DueSoonWindow(deadline.due_at, 0)
    # The window covers the last `working_days` working days, the last working day included.
    first = subtract_working_days(calendar, deadline.last_working_day, working_days - 1).day
    return DueSoonWindow(start_of_local_day(first), working_days)


NO_SUCH_PERSON_STATES = frozenset({CaseState.NO_SUCH_PERSON, CaseState.MISSED_MANAGEMENT})


def resubmission_problem(resubmits: Case, residence_township: str) -> str | None:
    """Why a corrected query cannot continue the chain of `resubmits`, or None when it can: rule 五
    re-submits a *query* answered 查无此人, and only the residence township that asked corrects it."""
    if resubmits.kind is CaseKind.NOTIFICATION:
        return f"{resubmits.case_id} is a notification, not a query"
    if resubmits.state not in NO_SUCH_PERSON_STATES:
        return f"case {resubmits.case_id} was not answered 查无此人 (it is {resubmits.state.value}); nothing to re-submit"
    if resubmits.residence_township != residence_township:
        return "only the residence township that sent a query can re-submit it"
    return None


def open_case(
    case_id: str,
    kind: CaseKind,
    residence_township: str,
    registration_township: str,
    citizen_id: str,
    received_at: datetime,
    rules: DeadlineRuleSet,
    calendar: WorkingDayCalendar,
    *,
    resubmits: Case | None = None,
    direction: Direction = Direction.TO_REGISTRATION,
    event_date: date | None = None,
    learned_on: date | None = None,
    note: str | None = None,
    notification_kind: str | None = None,
) -> Case:
    """Open the case for a query or notification accepted at `received_at`.

    `resubmits` is the earlier 查无此人 case this corrected query replaces (rule 五); the new case
    links to it and to the whole chain before it. `residence_township` and `registration_township`
    are the person's two places whatever the direction; the recipient (`responsible_township`)
    must reply. A notification with an `event_date` gets its submission deadline: 5 working days
    after `learned_on` (defaulting to the event date), the day itself not counted. `note` is added to
    the cause of the first transition (e.g. why a resubmission was not linked to its chain).
    """
    _check_township(residence_township, "residence township")
    _check_township(registration_township, "registration township")
    if not case_id:
        raise ValueError("case id (message id) is required")
    if direction is Direction.TO_RESIDENCE and kind is not CaseKind.NOTIFICATION:
        raise ValueError("only a notification goes from the registration township to the residence township")
    received = to_utc(received_at)
    responsible = residence_township if direction is Direction.TO_RESIDENCE else registration_township
    deadline = deadline_for(kind, received, rules, calendar, responsible)
    submission_due_at = None
    if kind is CaseKind.NOTIFICATION and event_date is not None:
        learned_on = learned_on or event_date
        if learned_on < event_date:
            raise ValueError("a notification's event cannot be learned of before it happened")
        submission_due_at = compute_deadline(
            start_of_local_day(learned_on), rules.submission_working_days, calendar, rules.version
        ).due_at
    chain: tuple[str, ...] = ()
    if resubmits is not None:
        if (problem := resubmission_problem(resubmits, residence_township)) is not None:
            raise CaseTransitionError(problem)
        chain = (*resubmits.earlier_query_ids, resubmits.case_id)
    # The corrected query is "the same information" (rule 六) as the one it corrects, so it continues
    # that query's run of strikes, whatever field was corrected. Sent to another registration
    # township (the address was wrong), it is that township's first sight of her: a new run.
    strike_subject = None
    if resubmits is not None and resubmits.registration_township == registration_township:
        strike_subject = resubmits.strike_key.citizen_id
    if strike_subject == citizen_id:
        strike_subject = None
    cause = "received" if resubmits is None else f"received; corrected re-submission of {resubmits.case_id}"
    if note:
        cause = f"{cause}; {note}"
    return Case(
        case_id=case_id,
        kind=kind,
        residence_township=residence_township,
        registration_township=registration_township,
        citizen_id=citizen_id,
        received_at=received,
        reporting_month=reporting_month_of(received),
        original_deadline=deadline,
        deadline=deadline,
        due_soon=_due_soon_window(calendar, deadline, rules.due_soon_working_days),
        state=CaseState.AWAITING_REPLY,
        history=(Transition(received, None, CaseState.AWAITING_REPLY, cause),),
        resubmission_of=resubmits.case_id if resubmits else None,
        earlier_query_ids=chain,
        strike_subject=strike_subject,
        direction=direction,
        event_date=event_date if kind is CaseKind.NOTIFICATION else None,
        learned_on=learned_on if kind is CaseKind.NOTIFICATION else None,
        notification_kind=notification_kind if kind is CaseKind.NOTIFICATION else None,
        submission_due_at=submission_due_at,
    )


def _move(case: Case, to_state: CaseState, at: datetime, cause: str, **changes: object) -> Case:
    return replace(case, state=to_state, history=(*case.history, Transition(at, case.state, to_state, cause)), **changes)


def _time_state(case: Case, now: datetime) -> tuple[CaseState, datetime, str]:
    if now >= case.deadline.due_at:
        return CaseState.OVERDUE, case.deadline.due_at, "no reply by 24:00 CST of the last working day"
    if now >= case.due_soon.starts_at:
        return CaseState.DUE_SOON, case.due_soon.starts_at, f"reply due within {case.due_soon.working_days} working days"
    return CaseState.AWAITING_REPLY, case.received_at, "deadline moved later"


def evaluate(case: Case, now: datetime) -> Case:
    """Bring an open case's state up to date with time passing; closed cases are returned unchanged.

    The transition is stamped with the instant the rule took effect (e.g. the deadline), not with
    `now`, so evaluating late or twice yields the same history.
    """
    if not case.is_open:
        return case
    target, effective_at, cause = _time_state(case, to_utc(now))
    if target is case.state:
        return case
    return _move(case, target, max(effective_at, case.history[-1].at), cause)


def record_feedback(
    case: Case,
    answered_at: datetime,
    result: FeedbackResult,
    *,
    reason: NoSuchPersonReason | None = None,
    remarks: str = "",
    message_id: str = "",
) -> Case:
    """Record the registration township's reply, accepted by the gateway at `answered_at`: on time
    when before its deadline, late at or after it; the 20th and the month's close play no part."""
    answered = to_utc(answered_at)
    if case.state is CaseState.WITHDRAWN:
        raise CaseTransitionError(f"case {case.case_id} was withdrawn; the reply is delivered but not counted")
    if not case.is_open:
        raise CaseTransitionError(f"case {case.case_id} already has a reply ({case.state})")
    if answered < case.received_at:
        raise ValueError("a reply cannot be accepted before its query")
    if result is FeedbackResult.NO_SUCH_PERSON:
        if reason is None:
            raise ValueError("查无此人 needs a reason (rule 四)")
        if reason is NoSuchPersonReason.OTHER and not remarks.strip():
            raise ValueError("查无此人 with reason 'other' needs remarks (rule 六: 在备注栏内注明原因)")
    elif reason is not None:
        raise ValueError("a reason is only given with 查无此人")

    late_because = "after the deadline" if answered >= case.deadline.due_at else None
    on_time = late_because is None
    feedback = Feedback(answered, result, on_time, late_because, reason, remarks, message_id)

    if result is FeedbackResult.NO_SUCH_PERSON:
        to_state = CaseState.NO_SUCH_PERSON
        cause = "reply: 查无此人" + ("" if on_time else f" ({late_because})")
    elif on_time:
        to_state, cause = CaseState.ANSWERED_ON_TIME, "reply: found, on time"
    else:
        to_state, cause = CaseState.ANSWERED_LATE, f"reply: found, {late_because}"
    return _move(case, to_state, answered, cause, feedback=feedback)


def withdraw(case: Case, at: datetime, cause: str = "withdrawn by the residence township") -> Case:
    if not case.is_open:
        raise CaseTransitionError(f"case {case.case_id} is closed ({case.state}); it cannot be withdrawn")
    at_utc = to_utc(at)
    return _move(case, CaseState.WITHDRAWN, at_utc, cause, withdrawn_at=at_utc)


def mark_missed_management(case: Case, charge: MissedManagementCharge) -> Case:
    if case.state is not CaseState.NO_SUCH_PERSON:
        raise CaseTransitionError(f"case {case.case_id} is {case.state}, not 查无此人")
    if case.case_id != charge.evidence_query_ids[-1]:
        raise CaseTransitionError("the charge's last piece of evidence must be this case")
    cause = "third consecutive 查无此人: 漏管 charged; evidence " + ", ".join(charge.evidence_query_ids)
    return _move(case, CaseState.MISSED_MANAGEMENT, charge.charged_at, cause, missed_management=charge)


def mark_reminder_sent(case: Case, reminder_kind: str) -> Case:
    return replace(case, reminders_sent=case.reminders_sent | {reminder_kind})


def recompute_open_deadlines(
    cases: Iterable[Case],
    calendar: WorkingDayCalendar,
    now: datetime,
) -> list[Case]:
    """After a calendar update: recompute the deadlines of open cases computed with another version.

    Closed cases keep the deadline they were judged by. The case keeps its original deadline and
    its working-day count (the rule in force at receipt); only the calendar changes.
    """
    out: list[Case] = []
    for case in cases:
        if not case.is_open or case.deadline.calendar_version == calendar.version:
            out.append(case)
            continue
        old = case.deadline
        new = compute_deadline(case.received_at, old.working_days, calendar, old.rule_set_version)
        moved = replace(case, deadline=new, due_soon=_due_soon_window(calendar, new, case.due_soon.working_days))
        if new.due_at != old.due_at or new.provisional != old.provisional:
            note = (
                f"deadline recomputed with calendar {calendar.version}: "
                f"{old.last_working_day.isoformat()}{' (provisional)' if old.provisional else ''} → "
                f"{new.last_working_day.isoformat()}{' (provisional)' if new.provisional else ''}"
            )
            moved = replace(
                moved,
                history=(*moved.history, Transition(to_utc(now), case.state, case.state, note)),
                deadline_changes=(*moved.deadline_changes, DeadlineChange(to_utc(now), new)),
            )
        out.append(_reevaluate(moved, to_utc(now)))
    return out


def _reevaluate(case: Case, now: datetime) -> Case:
    # Unlike `evaluate`, may move an overdue case back when its deadline moved later.
    target, effective_at, cause = _time_state(case, now)
    if target is case.state:
        return case
    if target is CaseState.OVERDUE or target is CaseState.DUE_SOON and case.state is CaseState.AWAITING_REPLY:
        return _move(case, target, max(effective_at, case.history[-1].at), cause)
    return _move(case, target, now, "deadline moved later by a calendar update")
