"""The targets the seeds set, and each township or region held against them.

The seeds set thresholds, not a score: rule 十三 (seed 000) a feedback rate of 100% of the queries
received; seed 001 (三、工作目标) entry and accuracy ≥ 98%, submission, feedback and 协查 ≥ 98%,
matching ≥ 96%. The thresholds and their sources are data (`schemas/workflow/targets.json`); a
figure's value comes from the township's counts as the one replying (`Counts`) or as the sender
(`SenderCounts`).

For each target: met (value ≥ threshold), or not, with the gap in percentage points
(threshold − value, 0 when met). A figure with no value (nothing to judge: nothing received) is
neither met nor missed ("—"), as a rate with no denominator is neither 0% nor 100%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from gateway.workflow.accounting import Counts
from gateway.workflow.sender_accounting import SenderCounts

Side = Literal["reply", "sender"]

REPLY_FIGURES = ("feedback_rate", "timely_rate", "matching_rate", "notification_timely_rate", "notification_feedback_rate")
SENDER_FIGURES = ("accuracy", "submission_rate", "reverification_rate")


@dataclass(frozen=True)
class Target:
    figure: str  # a property of Counts (side "reply") or of SenderCounts (side "sender")
    at_least: Fraction
    side: Side
    source: str

    def __post_init__(self) -> None:
        known = REPLY_FIGURES if self.side == "reply" else SENDER_FIGURES
        if self.figure not in known:
            raise ValueError(f"target {self.figure!r}: not a {self.side} figure (known: {', '.join(known)})")
        if not 0 < self.at_least <= 1:
            raise ValueError(f"target {self.figure!r}: a rate threshold must be in (0, 1], got {self.at_least}")


@dataclass(frozen=True)
class TargetSet:
    version: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class TargetCheck:
    target: Target
    value: Fraction | None
    met: bool | None  # None: nothing to judge
    gap_points: Fraction | None  # percentage points short of the threshold; 0 when met

    @property
    def gap_text(self) -> str:
        if self.met is None or self.gap_points is None:
            return "—"
        return "met" if self.met else f"-{float(round(self.gap_points, 1)):.1f}pp"


def check(target: Target, value: Fraction | None) -> TargetCheck:
    if value is None:
        return TargetCheck(target, None, None, None)
    met = value >= target.at_least
    return TargetCheck(target, value, met, Fraction(0) if met else (target.at_least - value) * 100)


def check_all(targets: TargetSet, reply: Counts | None, sender: SenderCounts | None) -> list[TargetCheck]:
    """Every target of the set for one township or region (either side may be absent: None)."""
    out = []
    for target in targets.targets:
        counts = reply if target.side == "reply" else sender
        out.append(check(target, getattr(counts, target.figure) if counts is not None else None))
    return out


def summary(checks: Sequence[TargetCheck]) -> str:
    """'2/3': targets met out of those that could be judged."""
    judged = [c for c in checks if c.met is not None]
    return f"{sum(1 for c in judged if c.met)}/{len(judged)}"
