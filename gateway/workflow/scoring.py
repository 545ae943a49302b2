"""A quarterly score of the exchange cycle, per township and rolled up: a local convention.

The seeds set targets (`gateway.workflow.targets`), not a score: no seed weighs the feedback rate
against timeliness or prices a case of 漏管 in points. A province that wants one number keeps this
score as its own convention; its data file says so and who set it (``set_by``).

The formula, for a county supervisor
------------------------------------
Each quarter (exchange cycle, 交换周期) a township is scored out of 100 on how it answered the
queries and notifications it received as the registration place (户籍所在地):

    score = 100 × (feedback weight × feedback rate + timely weight × timely rate)
            − missed-management penalty × missed-management percentage

* feedback rate (反馈率) = answered ÷ received; must be 100% (rule 十三).
* timely rate (及时率)   = answered on time ÷ received (on time: within 10 working days for a
  query, 5 for a birth query or a notification, and before the month was closed).
* missed-management percentage = 漏管 cases charged ÷ received × 100.
* The weights and the penalty are in `schemas/workflow/scoring.json` (shipped: feedback 0.6,
  timely 0.4, penalty 2 points per percentage point of 漏管); the two weights must add up to 1.
* The result is kept between 0 and 100 and rounded half-up to the configured decimals.
* A township that received nothing in the quarter has no score ("—"), not 0 and not 100.

A county, city or province is scored with the same formula over the *sums* of its townships'
counts, never by averaging the townships' scores, so a big township weighs as much as its queries.

Example: received 40, answered 39, on time 35, one 漏管 charge →
100 × (0.6 × 39/40 + 0.4 × 35/40) − 2 × 2.5 = 58.5 + 35 − 5 = 88.5.

Reproducible: the score is exact rational arithmetic over the stored counts, rounded once at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from gateway.workflow.accounting import Counts, Level, roll_up


@dataclass(frozen=True)
class ScoreFormula:
    version: str
    feedback_weight: Fraction
    timely_weight: Fraction
    missed_management_penalty: Fraction  # points per percentage point of 漏管 cases / received
    max_points: int = 100
    decimals: int = 1
    set_by: str = ""  # who set this local convention (the seeds set no score)

    def __post_init__(self) -> None:
        if self.feedback_weight + self.timely_weight != 1:
            raise ValueError(f"score formula {self.version}: weights must add up to 1")
        if min(self.feedback_weight, self.timely_weight, self.missed_management_penalty) < 0:
            raise ValueError(f"score formula {self.version}: weights and penalty must be >= 0")


def score(counts: Counts, formula: ScoreFormula) -> Decimal | None:
    if not counts.received:
        return None
    feedback = Fraction(counts.answered, counts.received)
    timely = Fraction(counts.on_time, counts.received)
    missed_pct = Fraction(100 * counts.missed_management, counts.received)
    raw = formula.max_points * (formula.feedback_weight * feedback + formula.timely_weight * timely)
    raw -= formula.missed_management_penalty * missed_pct
    raw = min(max(raw, Fraction(0)), Fraction(formula.max_points))
    exact = Decimal(raw.numerator) / Decimal(raw.denominator)
    return exact.quantize(Decimal(1).scaleb(-formula.decimals), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ScoreRow:
    region: str
    counts: Counts
    points: Decimal | None
    formula_version: str


def score_table(
    township_rows: Mapping[str, Counts],
    formula: ScoreFormula,
    level: Level = Level.TOWNSHIP,
    region_prefix: str | None = None,
) -> list[ScoreRow]:
    """Scores for every region of `level` whose code starts with `region_prefix`, sorted by code."""
    selected = {t: c for t, c in township_rows.items() if not region_prefix or t.startswith(region_prefix)}
    rows = roll_up(selected, level)
    return [ScoreRow(code, counts, score(counts, formula), formula.version) for code, counts in sorted(rows.items())]
