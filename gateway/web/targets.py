"""The targets the dashboard measures regions against, and the bands of the townships' league table.

Kept in one place so that the workflow's own targets (issue 13, "targets in place of the score") can
replace these when they land. The feedback-rate target is the rule's (rule 十三: every query answered,
查无此人 included); the others are this system's own defaults, not taken from a rule document.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from gateway.workflow.accounting import Counts

FEEDBACK_RATE_TARGET = Fraction(1)  # rule 十三: 反馈率必须达到100%
TIMELY_RATE_TARGET = Fraction(95, 100)  # this system's default
OVERDUE_TARGET = 0  # nothing overdue
MISSED_MANAGEMENT_TARGET = 0  # no 漏管


@dataclass(frozen=True)
class Band:
    key: str  # CSS class
    label: str


MEETS = Band("meets", "达标")
NEAR = Band("near", "接近")
BELOW = Band("below", "未达标")
NO_DATA = Band("none", "无数据")


def _at_least(part: int, whole: int, rate: Fraction) -> bool:
    return part * rate.denominator >= rate.numerator * whole  # exact, without building a Fraction per township


def band(counts: Counts) -> Band:
    """达标: both rates at their targets; 接近: within 5 points of both; else 未达标; nothing received: 无数据."""
    received = counts.received
    if not received:
        return NO_DATA
    if _at_least(counts.answered, received, FEEDBACK_RATE_TARGET) and _at_least(counts.on_time, received, TIMELY_RATE_TARGET):
        return MEETS
    near = Fraction(5, 100)
    if (_at_least(counts.answered, received, FEEDBACK_RATE_TARGET - near)
            and _at_least(counts.on_time, received, TIMELY_RATE_TARGET - near)):
        return NEAR
    return BELOW
