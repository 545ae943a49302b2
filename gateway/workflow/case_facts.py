"""What closing a period needs to know of a case, and nothing more.

A province closes about two million cases a quarter. The accounting of R4/R5 looks at eleven facts
of each (who answers, when received, the deadline in force, when and how answered, withdrawn,
charged with 漏管); decoding whole cases with their histories to read those was most of the cost of
a close. Stores keep these facts beside each case (the SQL store as columns) and hand them to
`gateway.workflow.accounting` as `CaseFacts`; `facts_of` derives them from a case, so the two can
always be checked against each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from gateway.workflow.cases import Case
from gateway.workflow.deadlines import CaseKind
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.periods import ReportingMonth


class DeadlineMove(NamedTuple):
    """A calendar update that moved an open case's deadline (`Case.deadline_changes`)."""

    at: datetime  # UTC, when the new calendar was applied
    due_at: datetime
    calendar_version: str


class CaseFacts(NamedTuple):
    """A case as the accounting sees it. A tuple: millions are built per close, cheaply."""

    case_id: str
    responsible_township: str  # must reply: the recipient (the registration township, but for 户籍地向现居住地通报)
    reporting_month: ReportingMonth
    received_at: datetime  # UTC
    due_at: datetime  # the original deadline (UTC), in force unless a calendar update moved it
    calendar_version: str  # of the original deadline
    answered_at: datetime | None
    result: FeedbackResult | None
    withdrawn_at: datetime | None
    charged_at: datetime | None  # 漏管 charged on this case (the third 查无此人)
    deadline_moves: tuple[DeadlineMove, ...] = ()
    # What the sender's side is judged by (seed 002 第三十一条: both places are assessed).
    kind: CaseKind = CaseKind.QUERY
    sender_township: str = ""
    reason: NoSuchPersonReason | None = None  # of a 查无此人 reply
    submission_due_at: datetime | None = None  # a notification's: 5 working days after event / learned
    resubmission_of: str | None = None  # the 查无此人 query this corrected query re-submits (rule 五)

    def deadline_as_of(self, instant: datetime) -> tuple[datetime, str]:
        """Due instant and calendar version in force at `instant` (as `Case.deadline_as_of`)."""
        due_at, version = self.due_at, self.calendar_version
        for move in self.deadline_moves:
            if move.at <= instant:
                due_at, version = move.due_at, move.calendar_version
        return due_at, version


def facts_of(case: Case) -> CaseFacts:
    feedback, charge = case.feedback, case.missed_management
    return CaseFacts(
        case_id=case.case_id,
        responsible_township=case.responsible_township,
        reporting_month=case.reporting_month,
        received_at=case.received_at,
        due_at=case.original_deadline.due_at,
        calendar_version=case.original_deadline.calendar_version,
        answered_at=feedback.answered_at if feedback is not None else None,
        result=feedback.result if feedback is not None else None,
        withdrawn_at=case.withdrawn_at,
        charged_at=charge.charged_at if charge is not None else None,
        deadline_moves=tuple(
            DeadlineMove(change.at, change.deadline.due_at, change.deadline.calendar_version)
            for change in case.deadline_changes
        ),
        kind=case.kind,
        sender_township=case.sender_township,
        reason=feedback.reason if feedback is not None else None,
        submission_due_at=case.submission_due_at,
        resubmission_of=case.resubmission_of,
    )
