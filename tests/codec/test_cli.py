"""`gateway codec …`: exit codes and output as scripts rely on them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app

from .conftest import found_dict, notification_dict, query_dict

runner = CliRunner()


def test_check_id_prints_ok_for_a_valid_number() -> None:
    result = runner.invoke(app, ["codec", "check-id", "11010519491231002x"])
    assert (result.exit_code, result.stdout) == (0, "ok\n")


def test_check_id_prints_the_reason_for_a_bad_number() -> None:
    result = runner.invoke(app, ["codec", "check-id", "110105194912310021"])
    assert (result.exit_code, result.stdout) == (1, "wrong check character '1', expected 'X'\n")


def test_validate_prints_ok_for_a_valid_message(tmp_path: Path) -> None:
    f = tmp_path / "q.json"
    f.write_text(json.dumps(query_dict(), ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["codec", "validate", str(f), "--today", "2026-11-23"])
    assert (result.exit_code, result.stdout) == (0, "ok\n")


def test_validate_judges_a_birth_of_the_statistical_years_last_day_on_the_shipped_calendar(tmp_path: Path) -> None:
    # A birth of Tue 30 Sep 2025, known that day: its 5 working days after it skip National Day 1–8 Oct
    # 2025 and count Sat 11 Oct (调休): 9, 10, 11, 13, 14 October. On the 14th it validates, on the 15th not.
    f = tmp_path / "n.json"
    f.write_text(json.dumps(notification_dict(event_date="2025-09-30"), ensure_ascii=False), encoding="utf-8")
    in_time = runner.invoke(app, ["codec", "validate", str(f), "--today", "2025-10-14"])
    assert (in_time.exit_code, in_time.stdout) == (0, "ok\n")
    too_late = runner.invoke(app, ["codec", "validate", str(f), "--today", "2025-10-15"])
    assert too_late.exit_code == 1
    assert "(5 working days after 2025-09-30: until 2025-10-14)" in too_late.stdout


def test_validate_prints_every_error_path(tmp_path: Path) -> None:
    f = tmp_path / "f.json"
    f.write_text(json.dumps(found_dict(children={"sons": -1, "daughters": -2}, extra=1)), encoding="utf-8")
    result = runner.invoke(app, ["codec", "validate", str(f), "--today", "2026-11-23"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "feedback.children.sons: must be ≥ 0",
        "feedback.children.daughters: must be ≥ 0",
        "feedback.extra: unknown field",
    ]


def test_validate_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text("{kind: query", encoding="utf-8")
    result = runner.invoke(app, ["codec", "validate", str(f)])
    assert result.exit_code == 1 and result.stdout.startswith("not JSON")


def test_import_reports_good_and_bad_rows_as_json(tmp_path: Path) -> None:
    f = tmp_path / "q.csv"
    f.write_text(
        "现居住地乡镇代码,户籍地乡镇代码,姓名,身份证号码\n"
        "110101001,410102001,王秀兰,11010519491231002X\n"
        "110101001,410102001,王秀兰,110105194912310021\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["codec", "import", str(f), "--kind", "query", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["good"], report["bad"]) == (1, 1)
    assert report["errors"][0]["row"] == 3 and report["errors"][0]["column"] == "身份证号码"


def test_schemas_check_passes_on_the_committed_files() -> None:
    result = runner.invoke(app, ["codec", "schemas", "--check"])
    assert (result.exit_code, result.stdout) == (0, "ok\n")
