"""Notifications ①–④ across 1 October: the statistical year and the 5 working days after learned_on.

Seed 002 第二十四条: ①统计年度内有生育子女行为的 … ④统计年度内怀孕的; 对应通报信息,应在5个工作日内提交.
Seed 000 登记制度 七: 计划生育统计期限为上年10月1日0时至本年9月30日24时; 出生当月、发现当月必须登记.
An event of the last days of a statistical year is still notified in the next one while its working
days run (on the State Council's calendar: National Day 1–7 Oct 2026, Saturday 10 Oct a working day),
and it counts in the statistical year of its own date.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.codec import CodecError, decode, encode, parse_message
from gateway.codec.messages import Notification
from gateway.web.reasons_zh import in_chinese
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.periods import statistical_year_bounds, statistical_year_of

from .conftest import TODAY, notification_dict

BIRTH = notification_dict(event_date="2026-09-27", learned_on="2026-09-28")  # a Sunday birth, known on Monday


def errors_of(obj: dict[str, Any], accepted_on: date, calendar: WorkingDayCalendar) -> dict[str, str]:
    with pytest.raises(CodecError) as err:
        parse_message(obj, today=TODAY, accepted_on=accepted_on, calendar=calendar)
    return {e.path: e.reason for e in err.value.errors}


def test_the_statistical_year_is_named_by_the_year_it_ends_in() -> None:
    # 上年10月1日0时至本年9月30日24时: statistical year 2026 ends on 30 September 2026.
    assert statistical_year_of(date(2026, 9, 27)) == 2026
    assert statistical_year_of(date(2026, 9, 30)) == 2026
    assert statistical_year_of(date(2026, 10, 1)) == 2027
    assert statistical_year_of(date(2027, 1, 1)) == 2027
    assert statistical_year_bounds(2027) == (date(2026, 10, 1), date(2027, 9, 30))


def test_a_birth_of_27_september_notified_on_10_october_within_its_working_days_is_accepted(real_calendar) -> None:
    # Learned on Mon 28 Sep 2026: 29, 30 Sep, (1–7 Oct National Day), 8, 9 and Sat 10 Oct (调休) are its 5.
    message = parse_message(BIRTH, today=TODAY, accepted_on=date(2026, 10, 10), calendar=real_calendar)
    assert isinstance(message, Notification) and message.event_date == date(2026, 9, 27)
    # … and it counts in the statistical year of the birth, not of the notification.
    assert statistical_year_of(message.event_date) == 2026
    assert statistical_year_of(date(2026, 10, 10)) == 2027
    # The receiving gateway, reading the same bytes with the sender's acceptance date, agrees.
    again = decode(encode(message), today=TODAY, accepted_on=date(2026, 10, 10), calendar=real_calendar)
    assert again == message


def test_a_birth_of_the_last_days_notified_after_its_working_days_is_refused_with_the_day_they_ran_until(
    real_calendar,
) -> None:
    errors = errors_of(BIRTH, date(2026, 10, 12), real_calendar)
    reason = errors["notification.event_date"]
    assert reason == (
        "must lie in the statistical year 2026-10-01 – 2027-09-30 of the acceptance date, or in the statistical year "
        "before it and be submitted within the working days after learned_on (5 working days after 2026-09-28: "
        "until 2026-10-10) (notification kind 1: 统计年度内)"
    )
    assert in_chinese(reason) == ("应在受理日期所在统计年度内（2026-10-01至2027-09-30）；上一统计年度的事件须在获知日期"
                                  "2026-09-28后5个工作日内（至2026-10-10）通报，已逾期")


def test_the_working_days_are_counted_from_learned_on_not_from_the_event(real_calendar) -> None:
    # Known on the day of the birth (a Sunday), its 5 working days end on Fri 9 Oct: 10 Oct is too late.
    known_at_once = notification_dict(event_date="2026-09-27")
    assert "until 2026-10-09" in errors_of(known_at_once, date(2026, 10, 10), real_calendar)["notification.event_date"]
    assert parse_message(known_at_once, today=TODAY, accepted_on=date(2026, 10, 9), calendar=real_calendar)


def test_the_national_day_holiday_is_not_counted(real_calendar) -> None:
    # Counted Monday to Friday (no calendar given), 1–7 October would be working days and the 5 days
    # after 28 Sep would end on 5 Oct: the State Council's calendar is what makes 10 Oct in time.
    weekdays = WorkingDayCalendar({}, "weekdays")
    assert "until 2026-10-05" in errors_of(BIRTH, date(2026, 10, 10), weekdays)["notification.event_date"]
    assert parse_message(BIRTH, today=TODAY, accepted_on=date(2026, 10, 10), calendar=real_calendar)


def test_every_kind_bound_to_the_statistical_year_has_the_window(real_calendar) -> None:
    kinds = {
        "2": {"child_sex": None, "contraception": "04"},
        "3": {"child_sex": None, "contraception": "01"},
        "4": {"child_sex": None, "pregnancy_weeks": 8},
    }
    for kind, fields in kinds.items():
        record = {**BIRTH, "notification_kind": kind, **fields}
        record = {k: v for k, v in record.items() if v is not None}
        assert parse_message(record, today=TODAY, accepted_on=date(2026, 10, 10), calendar=real_calendar)
        assert "notification.event_date" in errors_of(record, date(2026, 10, 12), real_calendar)


def test_an_event_two_statistical_years_back_is_refused_whatever_learned_on_says(real_calendar) -> None:
    # 统计年度内: only the year just ended reaches into the next one, through its working days.
    old = notification_dict(event_date="2025-09-20", learned_on="2026-10-09")
    reason = errors_of(old, date(2026, 10, 10), real_calendar)["notification.event_date"]
    assert reason.startswith("must lie in the statistical year 2026-10-01 – 2027-09-30 of the acceptance date")
    assert "until" not in reason


def test_a_configured_number_of_submission_days_is_used(real_calendar) -> None:
    # schemas/workflow/deadlines.json may set notification_submission_working_days; 3 after 28 Sep is 8 Oct.
    with pytest.raises(CodecError) as err:
        parse_message(BIRTH, today=TODAY, accepted_on=date(2026, 10, 9), calendar=real_calendar,
                      submission_working_days=3)
    assert "3 working days after 2026-09-28: until 2026-10-08" in str(err.value)


def test_the_import_counts_the_working_days_on_the_calendar_it_is_given(tmp_path, real_calendar) -> None:
    # The monthly cards imported on Sat 10 Oct 2026: the birth of 27 Sep learned of on 28 Sep is a good row,
    # as it is when typed in (the gateway passes its calendar to the import worker).
    from gateway.codec.bulk_import import import_file
    from tests.codec.test_bulk_import import write_csv

    header = ["通报类别", "现居住地乡镇代码", "户籍地乡镇代码", "姓名", "身份证号码", "事件日期", "知悉日期", "户籍地址", "子女性别"]
    row = ["1", "110101001", "410102001", "王秀兰", "11010519491231002X", "2026-09-27", "2026-09-28",
           "河南省郑州市中原区林山寨街道某村", "1"]
    path = write_csv(tmp_path / "n.csv", [header, row])
    with_calendar = import_file(path, "notification", today=date(2026, 10, 10), calendar=real_calendar)
    assert [g.message.event_date for g in with_calendar.good] == [date(2026, 9, 27)], with_calendar.errors
    weekdays_only = import_file(path, "notification", today=date(2026, 10, 10))
    [error] = weekdays_only.errors
    assert error.column == "事件日期" and "until 2026-10-05" in error.reason
