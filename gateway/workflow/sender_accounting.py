"""The sending side assessed (seed 002, 范文篇10 第三十一条: 双向考核), per township and period.

The accounting in `gateway.workflow.accounting` judges the township that must reply. The seeds judge
the other side too: 第三十一条(一)6 asks whether the residence place's notifications were 及时、准确、
高质、有效, and 第三十一条(二)4 the registration place's notifications to the residence place. Per
sending township, for the cases of a period (the reporting month of the message), as of an instant:

* queries_sent              — queries it sent (withdrawn before any reply not counted)
* queries_answered          — of those, answered
* own_error_no_such_person  — answered 查无此人 for the sender's own error: wrong address, name or
                              ID number (reasons 1–3 of rule 四; "other" is not counted against it)
* notifications_sent        — notifications it sent
* notifications_judged      — those with a submission deadline (an event date; cases stored before
                              revision 0007 have none and are not judged)
* notifications_on_time     — submitted within 5 working days of the event or of the day the sender
                              learned of it (第二十四条: 对应通报信息,应在5个工作日内提交)
* reverifications_opened    — its queries answered 查无此人 (each one a re-visit task, rule 五)
* reverifications_done      — of those, corrected and sent again (``resubmission_of``) by the instant
* reverification_seconds    — the time those took, from the 查无此人 to the corrected query, summed

Rates, from sums at every level, never averages:

* accuracy (准确率)          = 1 − own_error_no_such_person ÷ queries_answered
* submission rate (提交及时率) = notifications_on_time ÷ notifications_judged
* re-verification rate       = reverifications_done ÷ reverifications_opened
* mean re-verification time  = reverification_seconds ÷ reverifications_done (shown in days)

Everything is read from `CaseFacts`, filtered by the instant, so a closed period is recounted as of
its closing instant from the stored cases, identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from fractions import Fraction

from gateway.workflow.accounting import Level, Period, _months, region_code
from gateway.workflow.case_facts import CaseFacts
from gateway.workflow.deadlines import CaseKind
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.instants import to_utc
from gateway.workflow.periods import ReportingMonth

# Rule 四's reasons that are the sender's errors: 地址有误, 姓名有误, 身份证号码有误 (codes 1–3).
OWN_ERRORS = frozenset({NoSuchPersonReason.WRONG_ADDRESS, NoSuchPersonReason.WRONG_NAME, NoSuchPersonReason.WRONG_ID_NUMBER})


@dataclass(frozen=True)
class SenderCounts:
    queries_sent: int = 0
    queries_answered: int = 0
    own_error_no_such_person: int = 0
    notifications_sent: int = 0
    notifications_judged: int = 0
    notifications_on_time: int = 0
    reverifications_opened: int = 0
    reverifications_done: int = 0
    reverification_seconds: int = 0

    def __add__(self, other: SenderCounts) -> SenderCounts:
        return SenderCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def accuracy(self) -> Fraction | None:
        if not self.queries_answered:
            return None
        return 1 - Fraction(self.own_error_no_such_person, self.queries_answered)

    @property
    def submission_rate(self) -> Fraction | None:
        n = self.notifications_judged
        return Fraction(self.notifications_on_time, n) if n else None

    @property
    def reverification_rate(self) -> Fraction | None:
        n = self.reverifications_opened
        return Fraction(self.reverifications_done, n) if n else None

    @property
    def mean_reverification_days(self) -> Fraction | None:
        n = self.reverifications_done
        return Fraction(self.reverification_seconds, n * 86_400) if n else None


def count_senders(
    facts: Iterable[CaseFacts], period: Period | tuple[ReportingMonth, ...], as_of: datetime
) -> dict[str, SenderCounts]:
    """SenderCounts per sending township for the cases of `period` (a month, a quarter, or any
    reporting months, e.g. a statistical half-year), as of `as_of`.

    `facts` may hold later months too: a corrected query sent after the period still completes the
    re-visit of a 查无此人 of the period (it must be received by `as_of`).
    """
    as_of = to_utc(as_of)
    months = set(period) if isinstance(period, tuple) else set(_months(period))
    facts = list(facts)
    corrected: dict[str, datetime] = {}  # the 查无此人 query id → when its first correction arrived
    for f in facts:
        if f.resubmission_of and f.received_at <= as_of:
            seen = corrected.get(f.resubmission_of)
            if seen is None or f.received_at < seen:
                corrected[f.resubmission_of] = f.received_at
    tallies: dict[str, list[int]] = {}
    for f in facts:
        if f.reporting_month not in months or f.received_at > as_of:
            continue
        answered = f.answered_at is not None and f.answered_at <= as_of
        if not answered and f.withdrawn_at is not None and f.withdrawn_at <= as_of:
            continue  # withdrawn before any reply: not counted
        t = tallies.setdefault(f.sender_township, [0] * 9)
        if f.kind is CaseKind.NOTIFICATION:
            t[3] += 1
            if f.submission_due_at is not None:
                t[4] += 1
                t[5] += f.received_at < f.submission_due_at
            continue
        t[0] += 1
        if not answered:
            continue
        t[1] += 1
        if f.result is FeedbackResult.NO_SUCH_PERSON:
            t[2] += f.reason in OWN_ERRORS
            t[6] += 1
            done_at = corrected.get(f.case_id)
            if done_at is not None:
                t[7] += 1
                assert f.answered_at is not None
                t[8] += max(0, int((done_at - f.answered_at).total_seconds()))
    return {township: SenderCounts(*t) for township, t in tallies.items()}


def roll_up_senders(rows: Mapping[str, SenderCounts], level: Level) -> dict[str, SenderCounts]:
    out: dict[str, SenderCounts] = {}
    for township, counts in rows.items():
        code = region_code(township, level)
        out[code] = out.get(code, SenderCounts()) + counts
    return out
