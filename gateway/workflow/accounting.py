"""Feedback accounting per township, month and quarter, rolled up the divisions (R4, R5).

Who is accounted: the township that must reply (the recipient: the registration township,
户籍所在地, for every query and for notifications from the residence place; the residence township
for 户籍地向现居住地通报). Rule 十三 sets the feedback rate against 查询信息总数, the queries received,
so queries and notifications are counted apart (since rules version "2"; see `RULES_SEEDS`).
Which period: the reporting month (or quarter) of the instant the query was received; its reply is
counted there whenever it is given.

For each township and period, as of an instant, for its queries:

* received        — queries received in the period (withdrawn ones not counted)
* answered        — of those, replied to (查无此人 included)
* on_time         — replied before 24:00 CST of the last working day of its deadline (rules "3";
                    under "1" and "2" also before the query's reporting month was closed)
* late            — replied, but after the deadline
* overdue         — no reply, and the deadline has passed
* still_open      — no reply, deadline not reached yet
* no_such_person  — replies that were 查无此人 (part of answered)
* missed_management — 漏管 charges against the township whose third query falls in the period

so that received = on_time + late + overdue + still_open (three states that sum to 100% once the
deadlines have passed: on time, late, missing). Its notifications (通报) are counted the same way in
their own fields, `notifications_received` … `notifications_open`: handled on time means reviewed and
answered within 5 working days (seed 002, 范文篇10 第二十四条: 户籍地接收到通报信息后,须在5个工作日内
审核信息…并上传反馈信息); they never enter the queries' rates.

Rules versions: a snapshot records the rules it was counted by, and is recomputed by them, so a
quarter closed before a rule changed stays reproducible:

* "1" (`RULES_MIXED`, every snapshot closed before issue 13): notifications were counted among the
  queries, in `received` … `no_such_person`.
* "2" (`RULES_SEEDS`): queries only in the query fields; notifications in their own fields.
* "3" (`RULES_DEADLINE`, issue 23): as "2", and a reply is judged by its working-day deadline
  alone. Under "1" and "2" a reply given after its month was closed (the first tick after the 20th)
  counted late even inside its deadline, so every answer given after the 20th was late. Rule 二 of
  the 工作制度 (seed 000) has the township answer last month's information between the 21st and the
  next 20th, and 范文篇9 五(三) (seed 002) gives it 10 working days (5 for births): the 20th closes
  submissions, not the replies due after it.

Rates, computed from *summed counts* at every level (pooled), never as an average of child rates:

* feedback rate (反馈率)  = answered / received (queries; 查无此人 is an answer) — rule 十三, 100%
* timely rate  (及时率)   = on_time / received
* matching rate (匹配率)  = found / answered = (answered − no_such_person) / answered
* notification timely rate = notifications_on_time / notifications_received

When received = 0 a rate is undefined (``None``, shown as "—"): nothing was asked, so nothing can
be judged; it is neither 0% nor 100%, and such a township gets no score.

Roll-up by division code: township (9 digits) → county (first 6) → city (first 4) → province (2).

Closing a month (`close_month`) freezes its accounting as of the closing instant: replies that arrive
later are still delivered, but never change that snapshot. When a month closes is
`gateway.workflow.finality`'s rule (once every deadline of its cases has passed, by the next 20th at
the latest): so under rules "3" a reply after the close is after its deadline, late, and counted so
in the quarter, unless the month was closed at that latest day with a deadline still running. A
snapshot records a digest of the facts it was computed from, so it can be recomputed and checked
identical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from enum import Enum, StrEnum
from fractions import Fraction
from operator import itemgetter

from gateway.workflow.case_facts import CaseFacts, facts_of
from gateway.workflow.cases import Case
from gateway.workflow.deadlines import CaseKind
from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.instants import to_utc
from gateway.workflow.periods import Quarter, ReportingMonth


@dataclass(frozen=True)
class Counts:
    received: int = 0
    answered: int = 0
    on_time: int = 0
    late: int = 0
    overdue: int = 0
    still_open: int = 0
    no_such_person: int = 0
    missed_management: int = 0
    notifications_received: int = 0
    notifications_answered: int = 0
    notifications_on_time: int = 0
    notifications_late: int = 0
    notifications_overdue: int = 0
    notifications_open: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def feedback_rate(self) -> Fraction | None:
        return Fraction(self.answered, self.received) if self.received else None

    @property
    def timely_rate(self) -> Fraction | None:
        return Fraction(self.on_time, self.received) if self.received else None

    @property
    def missed_management_rate(self) -> Fraction | None:
        return Fraction(self.missed_management, self.received) if self.received else None

    @property
    def matching_rate(self) -> Fraction | None:
        """Answered queries whose person was found (the closest figure to seed 001's 信息匹配率)."""
        return Fraction(self.answered - self.no_such_person, self.answered) if self.answered else None

    @property
    def notification_timely_rate(self) -> Fraction | None:
        n = self.notifications_received
        return Fraction(self.notifications_on_time, n) if n else None

    @property
    def notification_feedback_rate(self) -> Fraction | None:
        n = self.notifications_received
        return Fraction(self.notifications_answered, n) if n else None


RULES_MIXED = "1"  # before issue 13: notifications counted among the queries
RULES_SEEDS = "2"  # rule 十三: queries apart; notifications in their own fields
RULES_DEADLINE = "3"  # issue 23: as "2", and a reply is on time by its working-day deadline alone
CURRENT_RULES = RULES_DEADLINE
RULES_VERSIONS = (RULES_MIXED, RULES_SEEDS, RULES_DEADLINE)


def _check_rules(rules_version: str) -> bool:
    """True when notifications are counted apart."""
    if rules_version not in RULES_VERSIONS:
        raise ValueError(f"unknown accounting rules version {rules_version!r} (known: {', '.join(RULES_VERSIONS)})")
    return rules_version != RULES_MIXED


def closure_makes_late(rules_version: str) -> bool:
    """True under the rules ("1", "2") by which a reply after its month's close counted late."""
    _check_rules(rules_version)
    return rules_version in (RULES_MIXED, RULES_SEEDS)


def percent(rate: Fraction | None, places: int = 1) -> str:
    """A rate for people: '97.5%' or '—' when undefined."""
    if rate is None:
        return "—"
    return f"{float(round(rate * 100, places)):.{places}f}%"


class Outcome(Enum):
    NOT_COUNTED = "not_counted"
    ON_TIME = "on_time"
    LATE = "late"
    OVERDUE = "overdue"
    STILL_OPEN = "still_open"


def outcome_as_of(case: Case, as_of: datetime, month_closed_at: datetime | None = None) -> Outcome:
    """How a case counts at instant `as_of`, given when its reporting month closed (if it did) when
    that makes a reply late (rules "1" and "2"; pass None for the rules in force)."""
    if case.received_at > as_of:
        return Outcome.NOT_COUNTED
    due_at = case.deadline_as_of(as_of).due_at
    feedback = case.feedback
    if feedback is not None and feedback.answered_at <= as_of:
        closed = month_closed_at is not None and feedback.answered_at >= month_closed_at
        return Outcome.LATE if closed or feedback.answered_at >= due_at else Outcome.ON_TIME
    if case.withdrawn_at is not None and case.withdrawn_at <= as_of:
        return Outcome.NOT_COUNTED
    return Outcome.OVERDUE if as_of >= due_at else Outcome.STILL_OPEN


def _counts_for(case: Case, as_of: datetime, month_closed_at: datetime | None, rules_version: str = CURRENT_RULES) -> Counts:
    outcome = outcome_as_of(case, as_of, month_closed_at if closure_makes_late(rules_version) else None)
    if outcome is Outcome.NOT_COUNTED:
        return Counts()
    answered = outcome in (Outcome.ON_TIME, Outcome.LATE)
    nsp = answered and case.feedback is not None and case.feedback.result is FeedbackResult.NO_SUCH_PERSON
    charged = case.missed_management is not None and case.missed_management.charged_at <= as_of
    if _check_rules(rules_version) and case.kind is CaseKind.NOTIFICATION:
        return Counts(
            notifications_received=1,
            notifications_answered=int(answered),
            notifications_on_time=int(outcome is Outcome.ON_TIME),
            notifications_late=int(outcome is Outcome.LATE),
            notifications_overdue=int(outcome is Outcome.OVERDUE),
            notifications_open=int(outcome is Outcome.STILL_OPEN),
            missed_management=int(charged),  # only a charge made before 漏管 was limited to queries
        )
    return Counts(
        received=1,
        answered=int(answered),
        on_time=int(outcome is Outcome.ON_TIME),
        late=int(outcome is Outcome.LATE),
        overdue=int(outcome is Outcome.OVERDUE),
        still_open=int(outcome is Outcome.STILL_OPEN),
        no_such_person=int(nsp),
        missed_management=int(charged),
    )


Period = ReportingMonth | Quarter


def _months(period: Period) -> tuple[ReportingMonth, ...]:
    return period.months if isinstance(period, Quarter) else (period,)


def account(
    cases: Iterable[Case],
    period: Period,
    as_of: datetime,
    closures: Mapping[ReportingMonth, datetime] | None = None,
    rules_version: str = CURRENT_RULES,
) -> dict[str, Counts]:
    """Counts per responsible township for the cases of `period`, as of `as_of`."""
    as_of = to_utc(as_of)
    closures = closures or {}
    months = set(_months(period))
    rows: dict[str, Counts] = {}
    for case in cases:
        if case.reporting_month not in months:
            continue
        c = _counts_for(case, as_of, closures.get(case.reporting_month), rules_version)
        if c.received or c.notifications_received:
            rows[case.responsible_township] = rows.get(case.responsible_township, Counts()) + c
    return rows


class Level(StrEnum):
    TOWNSHIP = "township"
    COUNTY = "county"
    CITY = "city"
    PROVINCE = "province"


_PREFIX = {Level.TOWNSHIP: 9, Level.COUNTY: 6, Level.CITY: 4, Level.PROVINCE: 2}


def region_code(township: str, level: Level) -> str:
    return township[: _PREFIX[level]]


def roll_up(rows: Mapping[str, Counts], level: Level) -> dict[str, Counts]:
    """Sum township counts into the regions of `level` (rates are then computed from the sums)."""
    out: dict[str, Counts] = {}
    for township, counts in rows.items():
        code = region_code(township, level)
        out[code] = out.get(code, Counts()) + counts
    return out


def total(rows: Mapping[str, Counts]) -> Counts:
    return sum(rows.values(), Counts())


@dataclass(frozen=True)
class AccountingSnapshot:
    """Frozen accounting of a closed period."""

    period: str
    closed_at: datetime
    rows: tuple[tuple[str, Counts], ...]  # sorted by township code
    inputs_digest: str
    calendar_versions: tuple[str, ...]
    rules_version: str = RULES_MIXED  # absent from the snapshots closed before it was recorded

    def as_dict(self) -> dict[str, Counts]:
        return dict(self.rows)


def _digest(
    cases: list[Case], period: Period, as_of: datetime, closures: Mapping[ReportingMonth, datetime],
    rules_version: str = CURRENT_RULES,
) -> str:
    # Only facts known at `as_of` enter the digest: a reply arriving after a close must not change it.
    def iso(x: datetime | None) -> str | None:
        return x.isoformat() if x is not None and x <= as_of else None

    separate = _check_rules(rules_version)
    facts = [
        [
            c.case_id,
            c.responsible_township,
            iso(c.received_at),
            c.deadline_as_of(as_of).due_at.isoformat(),
            iso(c.feedback.answered_at) if c.feedback else None,
            c.feedback.result.value if c.feedback and iso(c.feedback.answered_at) else None,
            iso(c.withdrawn_at),
            iso(c.missed_management.charged_at) if c.missed_management else None,
            *([c.kind.value] if separate else []),  # what the rules of version 2 count apart
        ]
        for c in sorted(cases, key=lambda c: c.case_id)
    ]
    return _hash_facts(facts, period, as_of, closures)


def _hash_facts(facts: list[list[str | None]], period: Period, as_of: datetime, closures: Mapping[ReportingMonth, datetime]) -> str:
    doc = {
        "period": str(period),
        "as_of": as_of.isoformat(),
        "closures": {str(m): t.isoformat() for m, t in sorted(closures.items()) if m in set(_months(period))},
        "facts": facts,
    }
    # check_circular=False: the facts are fresh lists of strings, and skipping the check does not change
    # the text (it only saves bookkeeping for each of a quarter's two million facts).
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, check_circular=False)
    return hashlib.sha256(text.encode()).hexdigest()


# Positions in a township's running tally, in the order of the fields of `Counts`.
_RECEIVED, _ANSWERED, _ON_TIME, _LATE, _OVERDUE, _STILL_OPEN, _NO_SUCH_PERSON, _MISSED_MANAGEMENT = range(8)
_N_RECEIVED, _N_ANSWERED, _N_ON_TIME, _N_LATE, _N_OVERDUE, _N_OPEN = range(8, 14)
_TALLY = 14


@dataclass(frozen=True)
class _Closing:
    rows: dict[str, Counts]
    facts: list[list[str | None]]  # the digest's facts, in the cases' order
    calendar_versions: set[str]


def _closing_pass(
    cases: Iterable[CaseFacts], month: ReportingMonth, as_of: datetime, month_closed_at: datetime,
    rules_version: str = CURRENT_RULES,
) -> _Closing:
    """`account`, the facts of `_digest` and the calendar versions of one month's cases, in one pass.

    A province closes about two million cases a quarter. This is the same rule as `outcome_as_of` /
    `_counts_for` and the same facts as `_digest`, written over `CaseFacts` (a few columns, not whole
    cases) so that each case's deadline in force is looked up once and counted into plain lists
    rather than summed as `Counts` values. It must give exactly what `account` and `_digest` give:
    tests/workflow/test_accounting_fast_path.py compares the two on generated quarters.
    """
    tallies: dict[str, list[int]] = {}
    facts: list[list[str | None]] = []
    versions: set[str] = set()
    no_such_person = FeedbackResult.NO_SUCH_PERSON
    separate = _check_rules(rules_version)
    if not closure_makes_late(rules_version):
        month_closed_at = _NEVER  # judged by the deadline alone
    notification = CaseKind.NOTIFICATION
    # Deadlines are midnights, shared by thousands of cases: format each once.
    due_text: dict[datetime, str] = {}
    same: ReportingMonth | None = None  # the last instance found equal to `month`
    for c in cases:
        # The store hands out one ReportingMonth instance per month read: compared by identity first,
        # the dataclass's value comparison runs once per instance instead of once per case.
        if c.reporting_month is not same:
            if c.reporting_month != month:
                continue
            same = c.reporting_month
        if c.received_at > as_of:
            continue
        if c.deadline_moves:
            due_at, version = c.deadline_as_of(as_of)
        else:
            due_at, version = c.due_at, c.calendar_version
        versions.add(version)
        due_iso = due_text.get(due_at)
        if due_iso is None:
            due_iso = due_text[due_at] = due_at.isoformat()
        answered_at = c.answered_at if c.answered_at is not None and c.answered_at <= as_of else None
        withdrawn_at = c.withdrawn_at if c.withdrawn_at is not None and c.withdrawn_at <= as_of else None
        charged_at = c.charged_at if c.charged_at is not None and c.charged_at <= as_of else None
        fact = [
            c.case_id,
            c.responsible_township,
            c.received_at.isoformat(),
            due_iso,
            answered_at.isoformat() if answered_at is not None else None,
            c.result if answered_at is not None else None,  # a StrEnum: JSON writes its value
            withdrawn_at.isoformat() if withdrawn_at is not None else None,
            charged_at.isoformat() if charged_at is not None else None,
        ]
        if separate:
            fact.append(c.kind)  # a StrEnum, as `result`
        facts.append(fact)
        if answered_at is None and withdrawn_at is not None:
            continue  # withdrawn before any reply: not counted
        tally = tallies.get(c.responsible_township)
        if tally is None:
            tally = tallies[c.responsible_township] = [0] * _TALLY
        if separate and c.kind is notification:
            tally[_N_RECEIVED] += 1
            if answered_at is not None:
                tally[_N_ANSWERED] += 1
                tally[_N_LATE if answered_at >= month_closed_at or answered_at >= due_at else _N_ON_TIME] += 1
            else:
                tally[_N_OVERDUE if as_of >= due_at else _N_OPEN] += 1
            tally[_MISSED_MANAGEMENT] += charged_at is not None
            continue
        tally[_RECEIVED] += 1
        if answered_at is not None:
            late = answered_at >= month_closed_at or answered_at >= due_at
            tally[_ANSWERED] += 1
            tally[_LATE if late else _ON_TIME] += 1
            tally[_NO_SUCH_PERSON] += c.result is no_such_person
        else:
            tally[_OVERDUE if as_of >= due_at else _STILL_OPEN] += 1
        tally[_MISSED_MANAGEMENT] += charged_at is not None
    return _Closing({t: Counts(*tally) for t, tally in tallies.items()}, facts, versions)


def _as_facts(cases: Iterable[Case | CaseFacts]) -> Iterator[CaseFacts]:
    for c in cases:
        yield c if isinstance(c, CaseFacts) else facts_of(c)


def _by_month(cases: Iterable[Case | CaseFacts], months: Iterable[ReportingMonth]) -> dict[ReportingMonth, list[CaseFacts]]:
    """The facts of the cases of `months`, grouped by month (other months' cases left out)."""
    by_month: dict[ReportingMonth, list[CaseFacts]] = {m: [] for m in months}
    for c in _as_facts(cases):
        facts = by_month.get(c.reporting_month)
        if facts is not None:
            facts.append(c)
    return by_month


def _sorted_pass(
    cases: Iterable[CaseFacts], month: ReportingMonth, as_of: datetime, month_closed_at: datetime, rules_version: str
) -> _Closing:
    closing = _closing_pass(cases, month, as_of, month_closed_at, rules_version)
    closing.facts.sort(key=itemgetter(0))  # stable, as `_digest` sorts the cases by id
    return closing


def _merged_rows(closings: Iterable[_Closing]) -> dict[str, Counts]:
    rows: dict[str, Counts] = {}
    for closing in closings:
        for township, counts in closing.rows.items():
            rows[township] = rows[township] + counts if township in rows else counts
    return rows


def _snapshot_of(
    period: Period, closed_at: datetime, closures: Mapping[ReportingMonth, datetime], closing: _Closing, rules_version: str
) -> AccountingSnapshot:
    return AccountingSnapshot(
        period=str(period),
        closed_at=closed_at,
        rows=tuple(sorted(closing.rows.items())),
        inputs_digest=_hash_facts(closing.facts, period, closed_at, closures),
        calendar_versions=tuple(sorted(closing.calendar_versions)),
        rules_version=rules_version,
    )


def _check_cutoff(period: Period, closed_at: datetime) -> None:
    if closed_at < period.ends_at:
        what = "reporting month" if isinstance(period, ReportingMonth) else "quarter"
        raise ValueError(f"{what} {period} cannot close before its cutoff {period.ends_at.isoformat()}")


class ClosingAt:
    """Months and quarters closed at one instant (one tick), each month's cases counted once.

    The tick after a quarter's cutoff closes the quarter's last month and then the quarter (after an
    outage, several months and the quarter). Within the quarter, a month closed in the same tick
    counts exactly as in its own snapshot (same instant, same closure), so its pass is reused
    instead of counting its cases a second time; a month closed in an earlier tick is counted again
    as of this instant, with its own closure. So one `ClosingAt` serves one tick, which reads each
    month's cases once: every call must be given the same cases for a month.
    """

    def __init__(self, closed_at: datetime, rules_version: str = CURRENT_RULES) -> None:
        _check_rules(rules_version)
        self.closed_at = to_utc(closed_at)
        self.rules_version = rules_version
        self._passes: dict[tuple[ReportingMonth, datetime], _Closing] = {}

    def _month_pass(self, cases: Iterable[CaseFacts], month: ReportingMonth, month_closed_at: datetime) -> _Closing:
        key = (month, month_closed_at)
        if key not in self._passes:
            self._passes[key] = _sorted_pass(cases, month, self.closed_at, month_closed_at, self.rules_version)
        return self._passes[key]

    def month(self, cases: Iterable[Case | CaseFacts], month: ReportingMonth) -> AccountingSnapshot:
        """Freeze month `month` (not before its cutoff, 24:00 CST on the 20th)."""
        _check_cutoff(month, self.closed_at)
        closing = self._month_pass(_as_facts(cases), month, self.closed_at)
        return _snapshot_of(month, self.closed_at, {month: self.closed_at}, closing, self.rules_version)

    def quarter(
        self, cases: Iterable[Case | CaseFacts], quarter: Quarter, closures: Mapping[ReportingMonth, datetime]
    ) -> AccountingSnapshot:
        """Freeze a quarter; `closures` are its months' closing instants (a month not yet closed is
        treated as closing with the quarter)."""
        _check_cutoff(quarter, self.closed_at)
        effective = {m: to_utc(closures.get(m, self.closed_at)) for m in quarter.months}
        uncounted = [m for m in quarter.months if (m, effective[m]) not in self._passes]
        by_month = _by_month(cases, uncounted) if uncounted else {}
        passes = [self._month_pass(by_month.get(m, ()), m, effective[m]) for m in quarter.months]
        rows = _merged_rows(passes)
        facts_of_quarter = [fact for closing in passes for fact in closing.facts]
        facts_of_quarter.sort(key=itemgetter(0))  # three sorted runs: a merge
        versions = set().union(*(closing.calendar_versions for closing in passes))
        return _snapshot_of(quarter, self.closed_at, effective, _Closing(rows, facts_of_quarter, versions), self.rules_version)


_NEVER = datetime.max.replace(tzinfo=timezone.utc)  # the closure of a month not closed yet


def count_as_of(
    cases: Iterable[Case | CaseFacts],
    period: Period,
    as_of: datetime,
    closures: Mapping[ReportingMonth, datetime] | None = None,
    rules_version: str = CURRENT_RULES,
) -> dict[str, Counts]:
    """`account` through the closing pass: the counts of a period at any instant, closed or not
    (e.g. a quarter in progress), from cases or their facts."""
    as_of = to_utc(as_of)
    closures = closures or {}
    months = _months(period)
    by_month = _by_month(cases, months)
    return _merged_rows(
        _closing_pass(by_month[month], month, as_of, to_utc(closures.get(month, _NEVER)), rules_version) for month in months
    )


def close_month(
    cases: Iterable[Case | CaseFacts], month: ReportingMonth, closed_at: datetime, rules_version: str = CURRENT_RULES
) -> AccountingSnapshot:
    """Freeze month `month` as of `closed_at` (not before its cutoff, 24:00 CST on the 20th)."""
    return ClosingAt(closed_at, rules_version).month(cases, month)


def close_quarter(
    cases: Iterable[Case | CaseFacts],
    quarter: Quarter,
    closed_at: datetime,
    closures: Mapping[ReportingMonth, datetime],
    rules_version: str = CURRENT_RULES,
) -> AccountingSnapshot:
    """Freeze a quarter (exchange cycle) as of `closed_at`; its months should have been closed.

    A month not yet closed is treated as closing with the quarter. A closed quarter is recomputed
    with the `rules_version` its snapshot records.
    """
    return ClosingAt(closed_at, rules_version).quarter(cases, quarter, closures)
