"""Events ①–④ counted by the statistical year of their own date (issue 23; seed 002 范文篇10 第二十四条).

A notification of kind 1 (birth, 统计年度内有生育子女行为), 2 (family-planning operation), 3 (long-acting
contraception due but not taken) or 4 (pregnancy) reports an *event*; 省表二 and 省表三 count such events
(人口(暂住)自然变动, 节育情况) per statistical period, which runs by the date of the event: the year from
1 October to 30 September (seed 000 登记制度 七: 计划生育统计期限为上年10月1日0时至本年9月30日24时), the
half-year from 1 October to 31 March (seed 002 范文篇4 第十六条(五): 年中报表统计上年10月1日到当年3月31日情况).
So a birth of 27 September notified on 10 October belongs to the year that ended on 30 September, though
its notification is an exchange of reporting month October.

Each event is counted for the residence township (现居住地: the place whose 暂住 population it changes),
once per notification received by the instant of the count; a notification withdrawn before any reply is
not counted. Notifications tracked before their kind was kept (revision 0011) have none and are not
counted: the report says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import NamedTuple

from gateway.workflow.accounting import Level, region_code
from gateway.workflow.cases import Case
from gateway.workflow.instants import to_utc

# The codec's notification kinds ①–④ (schemas/codes/notification_kind.json), the columns they fill.
EVENT_KINDS = {"1": "births", "2": "operations", "3": "contraception_due", "4": "pregnancies"}


class EventFact(NamedTuple):
    case_id: str
    residence_township: str
    notification_kind: str
    event_date: date
    received_at: datetime  # UTC
    answered_at: datetime | None
    withdrawn_at: datetime | None


def event_of(case: Case) -> EventFact | None:
    """The event a tracked notification reports, or None (a query, another kind, or no kind kept)."""
    if case.notification_kind not in EVENT_KINDS or case.event_date is None:
        return None
    feedback = case.feedback
    return EventFact(case.case_id, case.residence_township, case.notification_kind, case.event_date,
                     case.received_at, feedback.answered_at if feedback is not None else None, case.withdrawn_at)


@dataclass(frozen=True)
class EventCounts:
    births: int = 0
    operations: int = 0
    contraception_due: int = 0
    pregnancies: int = 0

    def __add__(self, other: EventCounts) -> EventCounts:
        return EventCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def count_events(facts: Iterable[EventFact], first: date, last: date, as_of: datetime) -> dict[str, EventCounts]:
    """Events dated `first` … `last` (both included), per residence township, as known at `as_of`."""
    as_of = to_utc(as_of)
    tallies: dict[str, dict[str, int]] = {}
    for f in facts:
        column = EVENT_KINDS.get(f.notification_kind)
        if column is None or not first <= f.event_date <= last or f.received_at > as_of:
            continue
        withdrawn = f.withdrawn_at is not None and f.withdrawn_at <= as_of
        if withdrawn and (f.answered_at is None or f.answered_at > as_of):
            continue
        tally = tallies.setdefault(f.residence_township, {})
        tally[column] = tally.get(column, 0) + 1
    return {township: EventCounts(**tally) for township, tally in tallies.items()}


def roll_up_events(rows: Mapping[str, EventCounts], level: Level) -> dict[str, EventCounts]:
    out: dict[str, EventCounts] = {}
    for township, counts in rows.items():
        code = region_code(township, level)
        out[code] = out.get(code, EventCounts()) + counts
    return out
