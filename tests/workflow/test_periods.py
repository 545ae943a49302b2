from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.workflow.periods import Quarter, ReportingMonth, quarter_of, reporting_month_of

from .conftest import cst


def test_24_00_on_the_20th_already_belongs_to_the_next_month() -> None:
    assert reporting_month_of(datetime(2026, 3, 20, 15, 59, 59, 999999, tzinfo=timezone.utc)) == ReportingMonth(2026, 3)
    assert reporting_month_of(datetime(2026, 3, 20, 16, 0, tzinfo=timezone.utc)) == ReportingMonth(2026, 4)


def test_cutoff_is_read_in_china_standard_time_not_utc() -> None:
    # 2026-03-20T20:00Z is already 21 March 04:00 in Beijing.
    assert reporting_month_of(datetime(2026, 3, 20, 20, tzinfo=timezone.utc)).label == "2026-04"
    # 2026-03-20T23:30+08:00 is 15:30Z on the 20th: still March.
    assert reporting_month_of(datetime.fromisoformat("2026-03-20T23:30:00+08:00")).label == "2026-03"


def test_late_december_belongs_to_january_and_the_first_quarter_of_the_next_year() -> None:
    assert reporting_month_of(cst(2025, 12, 25, 12)) == ReportingMonth(2026, 1)
    assert quarter_of(cst(2025, 12, 25, 12)) == Quarter(2026, 1)
    assert quarter_of(cst(2025, 12, 20, 23, 59)) == Quarter(2025, 4)


@pytest.mark.parametrize(
    ("q", "first", "last"),
    [(1, (2025, 12, 21), (2026, 3, 20)), (2, (2026, 3, 21), (2026, 6, 20)), (3, (2026, 6, 21), (2026, 9, 20)), (4, (2026, 9, 21), (2026, 12, 20))],
)
def test_quarters_run_from_the_21st_to_the_20th(q: int, first: tuple[int, int, int], last: tuple[int, int, int]) -> None:
    quarter = Quarter(2026, q)
    assert quarter.starts_at == cst(*first)
    assert quarter.ends_at == cst(*last) + timedelta(days=1)


def test_labels_parse_and_print_round_trip() -> None:
    assert str(ReportingMonth.parse("2026-01")) == "2026-01"
    assert str(Quarter.parse("2026q3")) == "2026Q3"
    with pytest.raises(ValueError):
        Quarter.parse("2026Q5")
    with pytest.raises(ValueError):
        ReportingMonth.parse("2026-13")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)))
def test_every_instant_lies_inside_its_reporting_month_and_quarter(instant: datetime) -> None:
    month = reporting_month_of(instant)
    assert month.starts_at <= instant < month.ends_at
    assert month.quarter.contains(instant)
    assert month in month.quarter.months
