"""The reports a scenario asks for, with the rows `gateway reports …` / `gateway scores` would print.

The rows come from the commands' own row builders (`reports_cmds.build_rows`, `scores_cmds.build_rows`)
over the scenario's database, so a scenario's figures and the command line's cannot differ; only the
cells are typed for JSON: counts as integers, rates as numbers 0–100 (the CSV's ``97.5%``), ``—``
(no figure) as null, codes and texts as strings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from gateway.cli import reports_cmds, scores_cmds
from gateway.workflow.accounting import Level
from gateway.workflow.data_files import DEFAULT_SCORING_FILE, DEFAULT_TARGETS_FILE, load_score_formula, load_targets
from gateway.workflow.periods import Quarter
from gateway.workflow.ports import CaseSource
from gateway.workflow.reports import ReportKind, report_period
from gateway.scenarios.timeline import BEIJING, ReportRequest

# Columns whose cells are text in every row (a code, a level, "1/2", a summary), never a number.
TEXT_COLUMNS = frozenset({"region", "level", "reverified", "targets_met", "gaps"})
NO_FIGURE = "—"


def json_cell(column: str, cell: str) -> Any:
    if column in TEXT_COLUMNS:
        return cell
    if cell == NO_FIGURE:
        return None
    number = cell[:-1] if cell.endswith("%") else cell
    try:
        return int(number)
    except ValueError:
        pass
    try:
        return float(number)
    except ValueError:
        return cell


def json_rows(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    return [{c: json_cell(c, cell) for c, cell in zip(columns, row)} for row in rows]


def _data_file(variable: str, default: Path) -> Path:
    # The same data files as `gateway scores` (which reads these variables too).
    return Path(os.environ[variable]) if os.environ.get(variable) else default


def report(source: CaseSource, request: ReportRequest, now: datetime) -> dict[str, Any]:
    """One requested report: its request, columns, rows (cells as the CSV prints them) and as-of instant;
    a period not final yet is counted as of `now` with ``status`` "provisional: …" (why), as the command
    prints it; one that has not begun gives ``rows: null`` and the reason in ``error``."""
    out: dict[str, Any] = {"request": request.as_request()}
    if request.kind == "scores":
        table = scores_cmds.build_rows(
            source, Quarter.parse(request.quarter or request.period or ""), request.region,
            request.level or Level.TOWNSHIP,
            load_score_formula(_data_file("GATEWAY_SCORING_FILE", DEFAULT_SCORING_FILE)),
            load_targets(_data_file("GATEWAY_TARGETS_FILE", DEFAULT_TARGETS_FILE)),
            lambda: now,
        )
        out.update(columns=list(scores_cmds.COLUMNS), status=table.status,
                   as_of=table.as_of.astimezone(BEIJING).isoformat(), cells=table.rows)
        return out
    period = report_period(ReportKind(request.kind), request.period or "")
    out["columns"] = list(reports_cmds.COLUMNS)
    try:
        rows, parts = reports_cmds.build_rows(source, period, request.region, now)
    except typer.Exit:  # a period that has not begun: the command's reason is on its error output
        out.update(status="not_begun", error=f"{period.kind} report {period.label} has not begun", cells=None)
        return out
    provisional = [p for p in parts if p.progress is not None]
    status = "closed" if not provisional else "provisional: " + "; ".join(f"{p.period}: {p.status}" for p in provisional)
    out.update(status=status, as_of=max(p.as_of for p in parts).astimezone(BEIJING).isoformat(), cells=rows)
    return out


def as_json(made: dict[str, Any]) -> dict[str, Any]:
    """The report for `--json`: the cells typed, under `rows`."""
    out = {k: v for k, v in made.items() if k != "cells"}
    out["rows"] = None if made["cells"] is None else json_rows(made["columns"], made["cells"])
    return out
