"""Reminders to the township that must reply: "due soon" and "overdue", each sent once per case.

* due soon — from 00:00 CST of the first day of the warning window (the last N working days before
  the deadline, N = `due_soon_working_days` in `schemas/workflow/deadlines.json`).
* overdue  — from the deadline (24:00 CST of the last working day) while no reply has arrived.

A case already overdue when first looked at gets only the overdue notice (a stale "due soon" would
be noise). The function only says what to send; the service sends it and records it with
`gateway.workflow.cases.mark_reminder_sent`, which is what makes each notice go out once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from gateway.workflow.cases import Case
from gateway.workflow.instants import to_utc


class ReminderKind(StrEnum):
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class Reminder:
    kind: ReminderKind
    case_id: str
    township: str  # who must act: the registration township
    due_at: datetime
    last_working_day: date
    provisional: bool


def reminders_due(cases: Iterable[Case], now: datetime) -> list[Reminder]:
    """Notices to send at `now` for the open cases among `cases`, sorted by township then deadline."""
    now = to_utc(now)
    out: list[Reminder] = []
    for case in cases:
        if not case.is_open:
            continue
        if now >= case.deadline.due_at:
            kind = ReminderKind.OVERDUE
        elif now >= case.due_soon.starts_at and ReminderKind.OVERDUE not in case.reminders_sent:
            kind = ReminderKind.DUE_SOON
        else:
            continue
        if kind in case.reminders_sent:
            continue
        out.append(
            Reminder(kind, case.case_id, case.responsible_township, case.deadline.due_at, case.deadline.last_working_day, case.deadline.provisional)
        )
    return sorted(out, key=lambda r: (r.township, r.due_at, r.case_id))
