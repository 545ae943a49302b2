"""Three strikes of 查无此人 make one case of 漏管 (R3; rules 六 and 十二).

Rule, in words (rule 六: 同一个信息连续三次收到同一个现居住地发送的个案查询信息,却查找不到该流出人员的,
视为该乡(镇、社区)对流出人员的漏管): when the same residence township sends the same information —
the same person's query, or its corrected re-submissions — to the same registration township, and
three consecutive answers are 查无此人 (no such person), the registration township is charged with
one case of 漏管 (missed management of its outflow population).

Decisions where the rules are silent:
* "Consecutive" is counted in the order the answers are accepted by the gateway.
* A *found* answer for the same key resets the count to 0.
* After a charge the count restarts at 0: a fourth and fifth 查无此人 do not charge again; a sixth does.
* Only queries count (个案查询信息): a 查无此人 answering a notification (通报) is never a strike.
* A corrected re-submission (``resubmission_of``, rule 五) is the same information as the query it
  corrects and continues its run, even when the citizen ID number was what was corrected: the key
  keeps the citizen ID of the chain's first query (`Case.strike_subject`). Sent to a different
  registration township, it starts that township's own run.
* The charge belongs to the reporting month of the third query (the one that completed the run),
  and keeps the three query message ids as evidence.

The ledger is a plain immutable value; `rebuild_ledger` in `gateway.workflow.feedback_handling`
recomputes it from stored cases, so a charge can always be re-derived from the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from gateway.workflow.feedback import FeedbackResult
from gateway.workflow.periods import ReportingMonth

STRIKES_FOR_MISSED_MANAGEMENT = 3  # rule 六: 连续三次…查找不到…视为漏管


@dataclass(frozen=True, order=True)
class StrikeKey:
    residence_township: str
    registration_township: str
    citizen_id: str


@dataclass(frozen=True)
class MissedManagementCharge:
    """One case of 漏管 charged to `key.registration_township`."""

    key: StrikeKey
    evidence_query_ids: tuple[str, ...]
    charged_at: datetime
    reporting_month: ReportingMonth

    @property
    def registration_township(self) -> str:
        return self.key.registration_township


@dataclass(frozen=True)
class StrikeLedger:
    """The current run of consecutive 查无此人 query ids per key (absent = 0)."""

    runs: Mapping[StrikeKey, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def count(self, key: StrikeKey) -> int:
        return len(self.runs.get(key, ()))

    def _with(self, key: StrikeKey, run: tuple[str, ...]) -> StrikeLedger:
        runs = dict(self.runs)
        if run:
            runs[key] = run
        else:
            runs.pop(key, None)
        return StrikeLedger(MappingProxyType(runs))


def record_answer(
    ledger: StrikeLedger,
    key: StrikeKey,
    query_id: str,
    result: FeedbackResult,
    answered_at: datetime,
    query_month: ReportingMonth,
) -> tuple[StrikeLedger, MissedManagementCharge | None]:
    """Fold one answer into the ledger; returns the new ledger and a charge if this was the third strike."""
    if result is FeedbackResult.FOUND:
        return ledger._with(key, ()), None
    run = (*ledger.runs.get(key, ()), query_id)
    if len(run) < STRIKES_FOR_MISSED_MANAGEMENT:
        return ledger._with(key, run), None
    charge = MissedManagementCharge(key=key, evidence_query_ids=run, charged_at=answered_at, reporting_month=query_month)
    return ledger._with(key, ()), charge
