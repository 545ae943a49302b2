"""The targets the dashboard measures regions against, and the bands of the townships' league table.

The targets are the seeds' (`schemas/workflow/targets.json`, read by `gateway.workflow.data_files`
and judged by `gateway.workflow.targets`): the dashboard shows the reply-side ones, the figures of
the township that must reply. The sender-side targets (submission rate, accuracy) need the senders'
counts, which the `scores` command reports; the dashboard shows them as not judged here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache

from gateway.workflow import targets as workflow_targets
from gateway.workflow.accounting import Counts
from gateway.workflow.data_files import DEFAULT_TARGETS_FILE, load_targets
from gateway.workflow.targets import TargetCheck, TargetSet

FIGURE_NAMES = {
    "feedback_rate": "查询反馈率",
    "timely_rate": "查询及时率",
    "matching_rate": "匹配率",
    "notification_feedback_rate": "通报反馈率",
    "notification_timely_rate": "通报及时反馈率",
    "accuracy": "准确率",
    "submission_rate": "提交率",
    "reverification_rate": "复核率",
}
NEAR_POINTS = Fraction(5)  # 接近: no target missed by more than 5 percentage points


@cache
def target_set() -> TargetSet:
    return load_targets(DEFAULT_TARGETS_FILE)


@cache
def reply_targets() -> TargetSet:
    full = target_set()
    return TargetSet(full.version, tuple(t for t in full.targets if t.side == "reply"))


@lru_cache(maxsize=8192)
def _checks(counts: Counts) -> tuple[TargetCheck, ...]:
    return tuple(workflow_targets.check_all(reply_targets(), counts, None))


def checks(counts: Counts) -> list[TargetCheck]:
    """The reply-side targets held against one township's or region's counts (a page judges hundreds of
    rows, mostly the same from one page to the next: each distinct count is judged once)."""
    return list(_checks(counts))


def summary(counts: Counts) -> str:
    """'2/3': targets met out of those that could be judged."""
    return workflow_targets.summary(checks(counts))


def gap_text(check: TargetCheck) -> str:
    if check.met is None or check.gap_points is None:
        return "—"
    return "达标" if check.met else f"差 {float(round(check.gap_points, 1)):.1f} 个百分点"


@dataclass(frozen=True)
class Band:
    key: str  # CSS class
    label: str


MEETS = Band("meets", "达标")
NEAR = Band("near", "接近")
BELOW = Band("below", "未达标")
NO_DATA = Band("none", "无数据")
PROVISIONAL = Band("provisional", "进行中")  # a period not final yet is judged against no target (issue 23)


def band(counts: Counts, provisional: bool = False) -> Band:
    """达标: every target that can be judged met; 接近: none short by more than 5 points; else 未达标;
    nothing to judge (nothing received): 无数据; a period not final yet: 进行中, never 未达标."""
    if provisional:
        return PROVISIONAL if counts.received or counts.notifications_received else NO_DATA
    judged = [c for c in checks(counts) if c.met is not None]
    if not judged:
        return NO_DATA
    if all(c.met for c in judged):
        return MEETS
    if all(c.gap_points is not None and c.gap_points <= NEAR_POINTS for c in judged):
        return NEAR
    return BELOW
