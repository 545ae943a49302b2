"""`gateway scores QUARTER` — the quarter's feedback accounting and scores, per region.

Cases are read through a `CaseSource` (gateway.workflow.ports); the service layer installs the
database adapter with `configure(...)`. The clock is read here, at the edge, only for a quarter
that is still open (a closed quarter is always shown as of its closing instant).
"""

from __future__ import annotations

import csv as csv_module
import io
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from gateway.workflow.accounting import Counts, Level, count_as_of, percent
from gateway.workflow.data_files import DEFAULT_SCORING_FILE, DataFileError, load_score_formula
from gateway.workflow.periods import Quarter
from gateway.workflow.ports import CaseSource
from gateway.workflow.scoring import ScoreRow, score_table
from gateway.codec.text_hygiene import spreadsheet_row

_source_provider: Callable[[], CaseSource] | None = None
_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # noqa: E731

COLUMNS = (
    "region",
    "received",
    "answered",
    "on_time",
    "late",
    "overdue",
    "still_open",
    "no_such_person",
    "missed_management",
    "feedback_rate",
    "timely_rate",
    "score",
)


def configure(source_provider: Callable[[], CaseSource], clock: Callable[[], datetime] | None = None) -> None:
    """Install the case source (and optionally a clock, for tests)."""
    global _source_provider, _clock
    _source_provider = source_provider
    if clock is not None:
        _clock = clock


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _cells(row: ScoreRow) -> list[str]:
    c: Counts = row.counts
    return [
        row.region,
        *(str(getattr(c, name)) for name in COLUMNS[1:9]),
        percent(c.feedback_rate),
        percent(c.timely_rate),
        "—" if row.points is None else str(row.points),
    ]


def scores(
    quarter: Annotated[str, typer.Option("--quarter", help="Quarter (exchange cycle), e.g. 2026Q1.")],
    region: Annotated[str | None, typer.Option("--region", help="Only townships whose code starts with this prefix.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV (comma-separated, header line) instead of a table.")] = False,
    level: Annotated[Level, typer.Option("--level", help="Roll the rows up to this level.")] = Level.TOWNSHIP,
    scoring_file: Annotated[
        Path, typer.Option("--scoring-file", envvar="GATEWAY_SCORING_FILE", help="Score formula data file.")
    ] = DEFAULT_SCORING_FILE,
) -> None:
    """Print a quarter's accounting and score per township (or county/city/province with --level)."""
    try:
        q = Quarter.parse(quarter)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="QUARTER") from e
    if region is not None and not (region.isdigit() and 1 <= len(region) <= 9):
        raise typer.BadParameter("must be a division code prefix (1-9 digits)", param_hint="--region")
    try:
        formula = load_score_formula(scoring_file)
    except DataFileError as e:
        raise _fail(f"bad scoring file: {e}") from e
    if _source_provider is None:
        raise _fail("no case source configured (the database adapter is not installed)")
    source = _source_provider()
    snapshot = source.quarter_snapshot(q)
    if snapshot is not None:
        # Closed: the figures frozen at the close (R5), not a recount.
        rows, as_of, status = snapshot.as_dict(), snapshot.closed_at, "closed"
    else:
        as_of, status = _clock(), "open"
        rows = count_as_of(source.cases_for_quarter(q), q, as_of, source.month_closures(q))
    table = score_table(rows, formula, level, region)

    if csv:
        buf = io.StringIO()
        writer = csv_module.writer(buf, lineterminator="\n")
        writer.writerow(spreadsheet_row(COLUMNS))
        for row in table:
            writer.writerow(spreadsheet_row(_cells(row)))
        typer.echo(buf.getvalue(), nl=False)
        return
    typer.echo(f"quarter {q.label} ({status}, as of {as_of.isoformat()}), score formula {formula.version}")
    lines = [list(COLUMNS), *(_cells(r) for r in table)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    for line in lines:
        typer.echo("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip())
