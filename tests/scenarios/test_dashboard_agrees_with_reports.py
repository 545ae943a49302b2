"""The dashboard a supervisor reads and `gateway reports monthly --csv` give the same figures (issue 23,
"Done when"): a shipped scenario is played into a database, then the dashboard's page model
(`build_dashboard`, what `/dashboard` renders) and the command on that same database are read for the
same month and region, on SQLite and PostgreSQL. A month not final is 进行中 on both, never 未达标.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.adapters.sql.case_source import SqlCaseSource
from gateway.adapters.sql.engine import create_engine
from gateway.cli import app, reports_cmds
from gateway.scenarios.player import simulate
from gateway.scenarios.timeline import parse
from gateway.web import targets
from gateway.web.dashboard_data import DashboardReader
from gateway.web.dashboard_view import DashboardView, build_dashboard
from gateway.web.render import render_dashboard
from gateway.workflow.accounting import percent
from gateway.workflow.calendar import WorkingDayCalendar

pytestmark = pytest.mark.database

SHIPPED = Path(__file__).resolve().parents[2] / "schemas" / "scenarios"
COUNTS = ("received", "answered", "on_time", "late", "overdue", "still_open", "no_such_person", "missed_management")
RATES = ("feedback_rate", "timely_rate")
COUNTY, TOWNSHIP = "120101", "120101001"


def july(**changes: Any) -> dict[str, Any]:
    document = json.loads((SHIPPED / "july-answer-after-the-20th.json").read_text(encoding="utf-8"))
    return {**copy.deepcopy(document), **changes}


def dashboard(url: str, calendar: WorkingDayCalendar, region: str, period: str, now: datetime) -> DashboardView:
    async def read() -> DashboardView:
        engine = create_engine(url)
        try:
            return await build_dashboard(DashboardReader(engine, calendar), region, period, now)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def reports_csv(url: str, period: str, region: str, now: datetime, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    monkeypatch.setattr(reports_cmds, "_source_provider", None)  # restored after the test
    monkeypatch.setattr(reports_cmds, "_clock", reports_cmds._clock)
    reports_cmds.configure(lambda: SqlCaseSource(url), clock=lambda: now)  # the report made at the dashboard's instant
    result = CliRunner().invoke(app, ["reports", "monthly", "--period", period, "--region", region, "--csv"])
    assert result.exit_code == 0, result.stderr
    return {row["region"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


def assert_same_figures(view: DashboardView, rows: dict[str, dict[str, str]]) -> None:
    on_page = {COUNTY: view.total, **{r.code: r.counts for r in view.rows}}
    assert set(rows) <= set(on_page), (sorted(rows), sorted(on_page))
    for region, row in rows.items():
        counts = on_page[region]
        assert {c: int(row[c]) for c in COUNTS} == {c: getattr(counts, c) for c in COUNTS}, region
        assert {r: row[r] for r in RATES} == {r: percent(getattr(counts, r)) for r in RATES}, region


def test_the_dashboard_and_the_monthly_report_agree_on_a_final_july_and_on_a_quiet_august(
    tmp_path: Path, database_url: str, real_calendar: WorkingDayCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    played = asyncio.run(simulate(parse(july()), database_url, tmp_path))
    now = played.until  # 22 Sep 2026: July and August are final
    view = dashboard(database_url, real_calendar, COUNTY, "2026-07", now)
    rows = reports_csv(database_url, "2026-07", COUNTY, now, monkeypatch)
    assert_same_figures(view, rows)
    assert (view.total.received, view.total.on_time, rows[COUNTY]["feedback_rate"]) == (1, 1, "100.0%")
    assert not view.provisional and view.status.startswith("已定稿") and rows[COUNTY]["provisional"] == "0"
    # August had no case: it closed by the calendar, empty on both.
    view = dashboard(database_url, real_calendar, COUNTY, "2026-08", now)
    rows = reports_csv(database_url, "2026-08", COUNTY, now, monkeypatch)
    assert_same_figures(view, rows)
    assert view.total.received == 0 and not view.provisional and view.status.startswith("已定稿")
    assert rows[COUNTY]["provisional"] == "0"


def test_a_month_whose_deadline_still_runs_is_in_progress_on_the_dashboard_and_provisional_in_the_report(
    tmp_path: Path, database_url: str, real_calendar: WorkingDayCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The query of Fri 17 Jul is not answered yet on Thu 23 Jul; it is due 31 Jul: 0 % so far, missed nothing.
    document = july(until="2026-07-23T00:00")
    document["events"] = document["events"][:1]
    played = asyncio.run(simulate(parse(document), database_url, tmp_path))
    view = dashboard(database_url, real_calendar, COUNTY, "2026-07", played.until)
    rows = reports_csv(database_url, "2026-07", COUNTY, played.until, monkeypatch)
    assert_same_figures(view, rows)
    assert (view.total.received, view.total.still_open) == (1, 1)
    assert view.provisional and view.status == "进行中：1 件未到期，最迟 2026-07-31 定稿"
    assert rows[COUNTY]["provisional"] == "1" and rows[TOWNSHIP]["provisional"] == "1"
    assert [r.band for r in view.rows if r.counts.received] == [targets.PROVISIONAL]
    assert all(f.meets is None for f in view.headline)
    html = render_dashboard(view)
    assert "进行中" in html and ">未达标<" not in html and "· 未达标" not in html
