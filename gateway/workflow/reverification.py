"""Re-verification tasks for the residence township after 查无此人 (R3; rule 五).

Rule 五: when a reply says 查无此人, the residence township visits the person again using the
village's information card, corrects and completes the query, and submits it again. The gateway
opens that task for it with every 查无此人; the corrected query is opened with
``open_case(..., resubmits=earlier_case)`` and linked to the task with `link_resubmission`.

The rules give no deadline for the re-visit, so the task has none; it stays open until a
corrected query arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from gateway.workflow.cases import Case, CaseState, CaseTransitionError
from gateway.workflow.feedback import NoSuchPersonReason


class TaskState(StrEnum):
    OPEN = "open"
    RESUBMITTED = "resubmitted"


@dataclass(frozen=True)
class ReverificationTask:
    task_id: str
    residence_township: str  # must do the re-visit
    registration_township: str
    citizen_id: str
    query_id: str  # the query answered 查无此人
    opened_at: datetime
    reason: NoSuchPersonReason | None
    remarks: str
    state: TaskState = TaskState.OPEN
    resubmitted_as: str | None = None
    resubmitted_at: datetime | None = None


def open_reverification(case: Case) -> ReverificationTask:
    if case.state not in (CaseState.NO_SUCH_PERSON, CaseState.MISSED_MANAGEMENT) or case.feedback is None:
        raise CaseTransitionError(f"case {case.case_id} was not answered 查无此人")
    return ReverificationTask(
        task_id=f"reverify:{case.case_id}",
        residence_township=case.residence_township,
        registration_township=case.registration_township,
        citizen_id=case.citizen_id,
        query_id=case.case_id,
        opened_at=case.feedback.answered_at,
        reason=case.feedback.reason,
        remarks=case.feedback.remarks,
    )


def link_resubmission(task: ReverificationTask, resubmission: Case) -> ReverificationTask:
    """Close the task with the corrected query that re-submits its 查无此人 query."""
    if task.state is not TaskState.OPEN:
        raise CaseTransitionError(f"task {task.task_id} is already {task.state}")
    if resubmission.resubmission_of != task.query_id:
        raise CaseTransitionError(f"case {resubmission.case_id} does not re-submit {task.query_id}")
    return replace(task, state=TaskState.RESUBMITTED, resubmitted_as=resubmission.case_id, resubmitted_at=resubmission.received_at)
