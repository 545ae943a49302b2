"""Bulk import: good rows come through, every bad row is reported with row, column and reason."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from gateway.codec.bulk_import import import_file
from gateway.codec.import_columns import LAYOUTS
from gateway.codec.import_templates import write_templates

from .conftest import TODAY

Q_HEADER = ["现居住地乡镇代码", "户籍地乡镇代码", "姓名", "身份证号码", "出生日期", "性别", "民族", "本地掌握儿子数"]
GOOD = ["110101001", "410102001", "王秀兰", "11010519491231002X", "1949-12-31", "女", "01", "1"]


def write_csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def test_good_and_bad_rows_are_both_accounted_for(tmp_path: Path) -> None:
    rows = [
        Q_HEADER,
        GOOD,
        ["110101001", "410102001", "王秀兰", "110105194912310021", "1949-12-31", "女", "01", "1"],
        ["110101001", "410102001", "李梅", "11010519491231002X", "1949/12/31", "2", "汉族", "两"],
        GOOD,
    ]
    report = import_file(write_csv(tmp_path / "q.csv", rows), "query", today=TODAY)
    assert [g.row for g in report.good] == [2, 5]
    assert [str(e) for e in report.errors] == [
        "row 3, column 身份证号码: wrong check character '1', expected 'X' (set id_check_confirmed to send it anyway)",
        "row 4, column 本地掌握儿子数: must be a whole number, got '两'",
    ]
    assert report.rows_read == len(report.good) + len(report.bad_rows) + len(report.blank_rows)


def test_labels_and_dates_in_common_forms_are_accepted(tmp_path: Path) -> None:
    rows = [Q_HEADER, ["110101001", "410102001", "王秀兰", "11010519491231002x", "1949年12月31日", "女性", "汉族", ""]]
    report = import_file(write_csv(tmp_path / "q.csv", rows), "query", today=TODAY)
    assert report.errors == []
    person = report.good[0].message.person
    assert (person.citizen_id, person.birth_date, person.sex, person.ethnicity) == (
        "11010519491231002X", date(1949, 12, 31), "2", "01")


def test_blank_rows_between_records_are_reported_not_dropped(tmp_path: Path) -> None:
    report = import_file(write_csv(tmp_path / "q.csv", [Q_HEADER, GOOD, ["", ""], GOOD, [], ["", ""]]), "query", today=TODAY)
    assert (len(report.good), report.blank_rows) == (2, [3])


def test_unknown_column_stops_the_file_before_any_row_is_taken(tmp_path: Path) -> None:
    report = import_file(write_csv(tmp_path / "q.csv", [Q_HEADER + ["血型"], GOOD + ["A"]]), "query", today=TODAY)
    assert report.file_errors == ["row 1, column 9: unknown column '血型' for query import"]
    assert report.good == []


def test_missing_required_column_stops_the_file(tmp_path: Path) -> None:
    report = import_file(write_csv(tmp_path / "q.csv", [Q_HEADER[1:], GOOD[1:]]), "query", today=TODAY)
    assert report.file_errors == ["row 1: missing required column(s) 现居住地乡镇代码"]


def test_value_in_an_unnamed_column_is_an_error(tmp_path: Path) -> None:
    report = import_file(write_csv(tmp_path / "q.csv", [Q_HEADER + [""], GOOD + ["stray"]]), "query", today=TODAY)
    assert [str(e) for e in report.errors] == ["row 2, column (unnamed): value in a column without a header"]


def test_csv_saved_by_chinese_excel_in_gbk_is_read(tmp_path: Path) -> None:
    report = import_file(write_csv(tmp_path / "q.csv", [Q_HEADER, GOOD], encoding="gbk"), "query", today=TODAY)
    assert len(report.good) == 1 and report.good[0].message.person.name == "王秀兰"


def test_xlsx_with_native_dates_and_numbers_is_read(tmp_path: Path) -> None:
    row = ["110101001", 410102001, "王秀兰", "11010519491231002X", datetime(1949, 12, 31), "女", 1, 1.0]
    report = import_file(write_xlsx(tmp_path / "q.xlsx", [Q_HEADER, row]), "query", today=TODAY)
    assert report.errors == []
    assert report.good[0].message.person.ethnicity == "01"  # Excel dropped the leading zero


def test_id_stored_as_an_excel_number_is_refused_because_digits_are_lost(tmp_path: Path) -> None:
    row = [*GOOD[:3], 110105194912310021, *GOOD[4:]]
    report = import_file(write_xlsx(tmp_path / "q.xlsx", [Q_HEADER, row]), "query", today=TODAY)
    assert [str(e) for e in report.errors] == [
        "row 2, column 身份证号码: stored as a number, which loses digits: format the column as text"
    ]


def test_notification_rows_report_kind_rule_violations_at_their_column(tmp_path: Path) -> None:
    header = ["通报类别", "现居住地乡镇代码", "户籍地乡镇代码", "姓名", "身份证号码", "事件日期", "户籍地址", "子女性别", "孕周"]
    rows = [
        header,
        ["1", "110101001", "410102001", "王秀兰", "11010519491231002X", "2026-10-01", "林山寨街道某村", "男", ""],
        ["4", "110101001", "410102001", "王秀兰", "11010519491231002X", "2026-10-01", "林山寨街道某村", "", ""],
        ["4", "110101001", "410102001", "王秀兰", "11010519491231002X", "2027-01-01", "林山寨街道某村", "", "50"],
    ]
    report = import_file(write_csv(tmp_path / "n.csv", rows), "notification", today=TODAY)
    assert [g.row for g in report.good] == [2]
    assert [str(e) for e in report.errors] == [
        "row 3, column 孕周: required for notification kind 4",
        "row 4, column 事件日期: must not be after the reference date 2026-11-23",
        "row 4, column 孕周: must be ≤ 45",
    ]


def test_progress_is_reported_for_large_files(tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    path = write_xlsx(tmp_path / "big.xlsx", [Q_HEADER] + [GOOD] * 2500)
    report = import_file(path, "query", today=TODAY, progress=lambda done, total: calls.append((done, total)))
    assert len(report.good) == 2500
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]


def test_unsupported_and_unreadable_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "x.xls").write_bytes(b"old")
    (tmp_path / "y.xlsx").write_bytes(b"not a zip")
    assert import_file(tmp_path / "x.xls", "query").file_errors == ["x.xls: unsupported file type (use .csv or .xlsx)"]
    assert import_file(tmp_path / "y.xlsx", "query").file_errors[0].startswith("y.xlsx: cannot read")


@pytest.mark.parametrize("kind", ["query", "notification"])
def test_shipped_templates_match_the_column_layout(kind: str, tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "templates"
    write_templates(tmp_path)
    assert (shipped / f"{kind}-import.csv").read_bytes() == (tmp_path / f"{kind}-import.csv").read_bytes()
    header = (shipped / f"{kind}-import.csv").read_text(encoding="utf-8-sig").strip().split(",")
    assert header == [c.header for c in LAYOUTS[kind]]
    report = import_file(shipped / f"{kind}-import.xlsx", kind)  # type: ignore[arg-type]
    assert report.ok and report.rows_read == 0


def test_every_column_is_documented_for_clerks() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "codec-import.md").read_text(encoding="utf-8")
    missing = [c.header for cols in LAYOUTS.values() for c in cols if f"| {c.header} |" not in doc]
    assert missing == []


def test_notification_rows_carry_direction_learned_on_and_certificate_issue_date(tmp_path: Path) -> None:
    header = ["通报类别", "通报方向", "现居住地乡镇代码", "户籍地乡镇代码", "姓名", "身份证号码", "事件日期", "知悉日期",
              "户籍地址", "婚育证明号码", "婚育证明发证日期", "备注"]
    rows = [
        header,
        ["5", "向现居住地", "110101001", "410102001", "王秀兰", "11010519491231002X", "2026-11-01", "2026-11-03",
         "林山寨街道某社区", "豫0102-0001", "2023-10-01", "证明已过期"],
        ["5", "两边", "110101001", "410102001", "王秀兰", "11010519491231002X", "2026-11-01", "",
         "林山寨街道某社区", "豫0102-0001", "", "证明已过期"],
        ["1", "", "110101001", "410102001", "王秀兰", "11010519491231002X", "2026-09-30", "",
         "林山寨街道", "", "", ""],
    ]
    report = import_file(write_csv(tmp_path / "n.csv", rows), "notification", today=TODAY)
    [good] = report.good
    assert good.row == 2
    assert good.message.direction == "to_residence" and good.message.learned_on == date(2026, 11, 3)
    assert good.message.marriage_certificate_issued_on == date(2023, 10, 1)
    reasons = {(e.row, e.column): e.reason for e in report.errors}
    assert reasons[(3, "通报方向")] == "must be one of 向户籍地, 向现居住地, got '两边'"
    assert reasons[(4, "户籍地址")].startswith("must reach village or community level")
    assert reasons[(4, "事件日期")].startswith("must lie in the statistical year 2026-10-01 – 2027-09-30")
