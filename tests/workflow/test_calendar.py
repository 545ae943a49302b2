from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from gateway.workflow.calendar import WorkingDayCalendar, YearSchedule, add_working_days, subtract_working_days
from gateway.workflow.data_files import DataFileError, load_calendar


def test_spring_festival_2026_days_off_and_make_up_saturdays(real_calendar: WorkingDayCalendar) -> None:
    assert not any(real_calendar.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert real_calendar.is_working_day(date(2026, 2, 14))  # Saturday, 调休
    assert real_calendar.is_working_day(date(2026, 2, 28))  # Saturday, 调休
    assert real_calendar.is_working_day(date(2026, 2, 24))


def test_national_day_2026_days_off_and_make_up_weekend_days(real_calendar: WorkingDayCalendar) -> None:
    assert not any(real_calendar.is_working_day(date(2026, 10, d)) for d in range(1, 8))
    assert not real_calendar.is_working_day(date(2026, 9, 25))  # Mid-autumn, a Friday
    assert real_calendar.is_working_day(date(2026, 9, 20))  # Sunday, 调休
    assert real_calendar.is_working_day(date(2026, 10, 10))  # Saturday, 调休


def test_package_years_are_published_and_2027_is_not(real_calendar: WorkingDayCalendar) -> None:
    assert real_calendar.is_published(2004) and real_calendar.is_published(2026)
    assert not real_calendar.is_published(2027)
    assert real_calendar.version.startswith("chinesecalendar-1.11.0+")


def test_unpublished_year_falls_back_to_monday_to_friday(real_calendar: WorkingDayCalendar) -> None:
    assert real_calendar.is_working_day(date(2027, 1, 1))  # a Friday; no schedule yet says otherwise
    assert not real_calendar.is_working_day(date(2027, 1, 2))


def test_counting_into_an_unpublished_year_is_provisional(real_calendar: WorkingDayCalendar) -> None:
    assert add_working_days(real_calendar, date(2026, 12, 30), 2).provisional
    assert not add_working_days(real_calendar, date(2026, 12, 1), 5).provisional


def test_receipt_day_is_not_counted_and_zero_days_is_the_same_day(real_calendar: WorkingDayCalendar) -> None:
    assert add_working_days(real_calendar, date(2026, 3, 2), 1).day == date(2026, 3, 3)
    assert add_working_days(real_calendar, date(2026, 3, 2), 0).day == date(2026, 3, 2)


def test_subtracting_walks_back_over_the_holiday(real_calendar: WorkingDayCalendar) -> None:
    assert subtract_working_days(real_calendar, date(2026, 2, 24), 1).day == date(2026, 2, 14)


def test_negative_working_days_are_refused(real_calendar: WorkingDayCalendar) -> None:
    with pytest.raises(ValueError):
        add_working_days(real_calendar, date(2026, 3, 2), -1)


def test_make_up_working_day_must_be_a_weekend_day() -> None:
    with pytest.raises(ValueError, match="weekend"):
        YearSchedule(2030, makeup_workdays=frozenset({date(2030, 1, 7)}))  # a Monday


def _write(tmp_path: Path, years: dict[str, object], version: str = "test-1") -> Path:
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps({"version": version, "source": "test", "years": years}), encoding="utf-8")
    return path


def test_data_file_extends_the_package_with_a_new_year(tmp_path: Path) -> None:
    # Hypothetical 2027 schedule for the test only (not the State Council's).
    path = _write(tmp_path, {"2027": {"source": "test", "holidays": ["2027-01-01"], "makeup_workdays": ["2027-01-09"]}})
    calendar = load_calendar(path)
    assert calendar.is_published(2027)
    assert not calendar.is_working_day(date(2027, 1, 1))
    assert calendar.is_working_day(date(2027, 1, 9))
    assert calendar.is_working_day(date(2026, 2, 28))  # package years still there
    assert calendar.version == "chinesecalendar-1.11.0+test-1"


def test_data_file_year_replaces_the_package_year(tmp_path: Path) -> None:
    path = _write(tmp_path, {"2026": {"source": "correction", "holidays": [], "makeup_workdays": []}})
    calendar = load_calendar(path)
    assert calendar.is_working_day(date(2026, 2, 16))
    assert not calendar.is_working_day(date(2026, 2, 14))


@pytest.mark.parametrize(
    "years",
    [
        {"2027": {"source": "x", "holidays": ["2028-01-01"], "makeup_workdays": []}},
        {"2027": {"source": "x", "holidays": ["2027-13-01"], "makeup_workdays": []}},
        {"27": {"source": "x", "holidays": [], "makeup_workdays": []}},
        {"2027": {"source": "x", "holidays": [], "makeup_workdays": [], "typo": 1}},
    ],
)
def test_malformed_calendar_file_is_refused_with_its_path(tmp_path: Path, years: dict[str, object]) -> None:
    path = _write(tmp_path, years)
    with pytest.raises(DataFileError, match="calendar"):
        load_calendar(path)


def test_shipped_calendar_file_loads(real_calendar: WorkingDayCalendar) -> None:
    assert real_calendar.published_years()[0] == 2004
