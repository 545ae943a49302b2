"""One reply, all its consequences: the case outcome, three strikes, and the re-verification task.

This is the single entry point the service layer calls when a reply is accepted, so the order of
the rules (record the reply → count the strike → charge 漏管 → open the re-visit task) lives in
one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway.workflow.cases import Case, mark_missed_management, record_feedback
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.reverification import ReverificationTask, open_reverification
from gateway.workflow.strikes import MissedManagementCharge, StrikeLedger, record_answer


@dataclass(frozen=True)
class FeedbackOutcome:
    case: Case
    ledger: StrikeLedger
    charge: MissedManagementCharge | None
    reverification: ReverificationTask | None


def handle_feedback(
    case: Case,
    ledger: StrikeLedger,
    answered_at: datetime,
    result: FeedbackResult,
    *,
    reason: NoSuchPersonReason | None = None,
    remarks: str = "",
    message_id: str = "",
) -> FeedbackOutcome:
    answered = record_feedback(case, answered_at, result, reason=reason, remarks=remarks, message_id=message_id)
    assert answered.feedback is not None
    charge = None
    if case.counts_strikes:  # a notification's 查无此人 is no strike (rules 六/十二: 个案查询信息)
        ledger, charge = record_answer(ledger, case.strike_key, case.case_id, result, answered.feedback.answered_at, case.reporting_month)
    if charge is not None:
        answered = mark_missed_management(answered, charge)
    task = open_reverification(answered) if result is FeedbackResult.NO_SUCH_PERSON else None
    return FeedbackOutcome(answered, ledger, charge, task)


def rebuild_ledger(cases: Iterable[Case]) -> StrikeLedger:
    """The strike ledger re-derived from stored cases (answers folded in the order accepted)."""
    answered = sorted((c for c in cases if c.feedback is not None and c.counts_strikes), key=lambda c: (c.feedback.answered_at, c.case_id))  # type: ignore[union-attr]
    ledger = StrikeLedger()
    for case in answered:
        assert case.feedback is not None
        ledger, _ = record_answer(ledger, case.strike_key, case.case_id, case.feedback.result, case.feedback.answered_at, case.reporting_month)
    return ledger
