"""Reply deadlines in working days (R2).

Rule, in words: the day a message is received is not counted; the reply is due by 24:00 China
Standard Time of the N-th working day after it. N depends on the kind of message:

* query (查询, general information)         — 10 working days (seed 002, 范文篇9 五(三))
* birth-query (查询生育信息)                — 5 working days  (same place)
* notification (通报; review and feedback) — 5 working days  (seed 002, 范文篇10 第二十四条)

These numbers, and the due-soon warning window, live in `schemas/workflow/deadlines.json` (a `DeadlineRuleSet`), not in code; a
province may override them for the townships it is responsible for. The override that applies is
that of the province of the township that must reply (the registration township), because it is
that province's office whose working practice is being measured.

"24:00 of day D" is represented as the instant 00:00 CST of D+1, stored in UTC: a reply is on time
when it arrives strictly before that instant.

A deadline is *provisional* when counting the working days crossed a year whose holiday schedule is
not published yet; it is recomputed (open cases only) when a new calendar is loaded, see
`gateway.workflow.cases.recompute_open_deadlines`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from gateway.workflow.calendar import WorkingDayCalendar, add_working_days
from gateway.workflow.instants import end_of_local_day, local_date, to_utc


class CaseKind(StrEnum):
    """What the residence township sent, and so which reply deadline applies."""

    QUERY = "query"
    BIRTH_QUERY = "birth-query"
    NOTIFICATION = "notification"


@dataclass(frozen=True)
class DeadlineRuleSet:
    """Working days allowed per kind of message, with per-province overrides (keyed by 2-digit code)."""

    version: str
    working_days: Mapping[CaseKind, int]
    due_soon_working_days: int  # warning window before the deadline (reminders), in working days
    province_overrides: Mapping[str, Mapping[CaseKind, int]] = field(default_factory=dict)
    # A notification is submitted within this many working days of its event or of the day its
    # sender learned of it (seed 002, 范文篇10 第二十四条: 对应通报信息,应在5个工作日内提交).
    submission_working_days: int = 5

    def __post_init__(self) -> None:
        missing = set(CaseKind) - set(self.working_days)
        if missing:
            raise ValueError(f"deadline rule-set {self.version} has no rule for {sorted(missing)}")
        for where, table in [("national", self.working_days), *self.province_overrides.items()]:
            for kind, n in table.items():
                if n < 1:
                    # Zero would make a message due on the day of receipt, which R2 excludes.
                    raise ValueError(f"deadline rule-set {self.version} ({where}, {kind}): need >= 1 working day, got {n}")
        if self.submission_working_days < 1:
            raise ValueError(f"deadline rule-set {self.version}: notification submission needs >= 1 working day")
        if self.due_soon_working_days < 0:
            raise ValueError("due-soon window must be >= 0 working days")
        for province in self.province_overrides:
            if len(province) != 2 or not province.isdigit():
                raise ValueError(f"province override key must be a 2-digit division code, got {province!r}")

    def working_days_for(self, kind: CaseKind, responsible_township: str | None = None) -> int:
        if responsible_township:
            override = self.province_overrides.get(responsible_township[:2], {})
            if kind in override:
                return override[kind]
        return self.working_days[kind]


@dataclass(frozen=True)
class Deadline:
    """When a reply is due, and on what basis it was computed."""

    due_at: datetime  # UTC; exclusive bound = 00:00 CST after the last working day
    last_working_day: date  # the CST date whose 24:00 is the deadline
    provisional: bool
    calendar_version: str
    working_days: int
    rule_set_version: str = ""


def compute_deadline(received_at: datetime, working_days: int, calendar: WorkingDayCalendar, rule_set_version: str = "") -> Deadline:
    """Deadline for a message received at `received_at`, due `working_days` working days later."""
    received_day = local_date(to_utc(received_at))
    reached = add_working_days(calendar, received_day, working_days)
    return Deadline(
        due_at=end_of_local_day(reached.day),
        last_working_day=reached.day,
        provisional=reached.provisional,
        calendar_version=calendar.version,
        working_days=working_days,
        rule_set_version=rule_set_version,
    )


def deadline_for(
    kind: CaseKind,
    received_at: datetime,
    rules: DeadlineRuleSet,
    calendar: WorkingDayCalendar,
    responsible_township: str | None = None,
) -> Deadline:
    """The reply deadline for a message of `kind`, by the rule-set in force."""
    n = rules.working_days_for(kind, responsible_township)
    return compute_deadline(received_at, n, calendar, rules.version)
