from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from gateway.workflow.accounting import Counts, Level
from gateway.workflow.data_files import DEFAULT_SCORING_FILE, load_score_formula
from gateway.workflow.scoring import ScoreFormula, score, score_table

FORMULA = load_score_formula(DEFAULT_SCORING_FILE)


def test_the_worked_example_of_the_docstring_scores_88_5() -> None:
    assert score(Counts(received=40, answered=39, on_time=35, late=4, overdue=1, missed_management=1), FORMULA) == Decimal("88.5")


def test_everything_answered_on_time_scores_100_and_nothing_answered_scores_0() -> None:
    assert score(Counts(received=7, answered=7, on_time=7), FORMULA) == Decimal("100.0")
    assert score(Counts(received=7, overdue=7), FORMULA) == Decimal("0.0")


def test_the_score_never_goes_below_zero() -> None:
    assert score(Counts(received=3, overdue=1, answered=2, late=2, no_such_person=2, missed_management=1), FORMULA) == Decimal("0.0")


def test_nothing_received_means_no_score() -> None:
    assert score(Counts(), FORMULA) is None


def test_rounding_is_half_up_once_at_the_end() -> None:
    formula = ScoreFormula("t", Fraction(1, 2), Fraction(1, 2), Fraction(0), decimals=0)
    assert score(Counts(received=8, answered=7, on_time=7, late=0, overdue=1), formula) == Decimal("88")  # 87.5 → 88


def test_weights_must_add_up_to_one() -> None:
    with pytest.raises(ValueError, match="add up to 1"):
        ScoreFormula("t", Fraction(1, 2), Fraction(1, 3), Fraction(2))


def test_counties_are_scored_on_pooled_counts_within_the_region() -> None:
    rows = {
        "430521101": Counts(received=1, answered=1, on_time=1),
        "430521102": Counts(received=9, overdue=9),
        "440106001": Counts(received=2, answered=2, on_time=2),
    }
    table = score_table(rows, FORMULA, Level.COUNTY, region_prefix="43")
    assert [(r.region, r.points) for r in table] == [("430521", Decimal("10.0"))]  # not (100 + 0) / 2
