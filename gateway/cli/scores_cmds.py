"""`gateway scores QUARTER` — the quarter's figures per region, against the seeds' targets.

Each row: the township (or region) as the one replying — queries (rule 十三's feedback rate) and,
apart, notifications — and as the sender (accuracy, submission on time, re-verification), then the
targets of `schemas/workflow/targets.json` met and the gaps. The score column is the province's
local convention (`schemas/workflow/scoring.json`), not a rule of the seeds.

Cases are read through a `CaseSource` (gateway.workflow.ports); the service layer installs the
database adapter with `configure(...)`. The clock is read here, at the edge, only for a quarter
that is still open (a closed quarter is always shown as of its closing instant). A quarter is final
when its last month is (gateway.workflow.finality); until then it is provisional: the header says
why, and no row is judged against the targets (a figure still moving has missed nothing yet).
"""

from __future__ import annotations

import csv as csv_module
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from fractions import Fraction

from gateway.workflow.accounting import CURRENT_RULES, RULES_MIXED, Counts, Level, _as_facts, count_as_of, percent
from gateway.workflow.data_files import (
    DEFAULT_SCORING_FILE,
    DEFAULT_TARGETS_FILE,
    DataFileError,
    load_score_formula,
    load_targets,
)
from gateway.workflow.finality import (
    BEFORE_RECORDS,
    PROVISIONAL,
    before_records,
    period_progress,
    provisional_text,
    records_begin,
)
from gateway.workflow.periods import Quarter, reporting_month_of
from gateway.workflow.ports import CaseSource
from gateway.workflow.scoring import ScoreFormula, ScoreRow, score_table
from gateway.workflow.sender_accounting import SenderCounts, count_senders, roll_up_senders
from gateway.workflow.targets import TargetCheck, TargetSet, check_all, summary
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
    "notifications_received",
    "notifications_on_time",
    "notifications_late",
    "notifications_overdue",
    "notifications_open",
    "matching_rate",
    "notification_timely_rate",
    "queries_sent",
    "accuracy",
    "notifications_sent",
    "submission_rate",
    "reverified",
    "reverify_days",
    "targets_met",
    "gaps",
    "provisional",  # issue 23, added at the end: 1 while the quarter is not final
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


def _days(value: Fraction | None) -> str:
    return "—" if value is None else f"{float(round(value, 1)):.1f}"


def _cells(row: ScoreRow, sender: SenderCounts, checks: list[TargetCheck], provisional: bool) -> list[str]:
    c: Counts = row.counts
    if provisional:
        judged, gaps = PROVISIONAL, f"{PROVISIONAL}: not judged until final"
    else:
        judged = summary(checks)
        gaps = "; ".join(f"{ch.target.figure} ≥{percent(ch.target.at_least, 0)}: {ch.gap_text}"
                         for ch in checks if ch.met is not None) or "—"
    return [
        row.region,
        *(str(getattr(c, name)) for name in COLUMNS[1:9]),
        percent(c.feedback_rate),
        percent(c.timely_rate),
        "—" if row.points is None else str(row.points),
        *(str(getattr(c, name)) for name in COLUMNS[12:17]),
        percent(c.matching_rate),
        percent(c.notification_timely_rate),
        str(sender.queries_sent),
        percent(sender.accuracy),
        str(sender.notifications_sent),
        percent(sender.submission_rate),
        f"{sender.reverifications_done}/{sender.reverifications_opened}",
        _days(sender.mean_reverification_days),
        judged,
        gaps,
        str(int(provisional)),
    ]


@dataclass(frozen=True)
class ScoreTable:
    """The rows of `gateway scores` (cells as the CSV prints them) and the instant they are as of."""

    rows: list[list[str]]
    as_of: datetime
    # "closed" (the frozen figures of the close), "final: 已定稿：本网关启用前，无数据" (before the gateway's records
    # began: empty) or "provisional: …" (counted as of now, and why)
    status: str
    rules_version: str


def build_rows(
    source: CaseSource, q: Quarter, region: str | None, level: Level, formula: ScoreFormula, targets: TargetSet,
    now: Callable[[], datetime],
) -> ScoreTable:
    """The quarter's rows, as the command prints them; `now` is read only for a quarter still open.
    One function for the command and `gateway scenario play` (gateway/scenarios), so both give the same cells."""
    snapshot = source.quarter_snapshot(q)
    facts = list(source.cases_for_quarter(q))
    begins = None if snapshot is not None else records_begin(source.first_known_month(), now())
    if snapshot is not None:
        # Closed: the figures frozen at the close (R5), not a recount.
        rows, as_of, status = snapshot.as_dict(), snapshot.closed_at, "closed"
        rules_version = snapshot.rules_version
    elif begins is not None and before_records(q, begins):
        # Before the gateway's records began: no case by construction, and the tracker never closes it.
        rows, as_of, status, rules_version = {}, min(now(), begins.starts_at), f"final: {BEFORE_RECORDS}", CURRENT_RULES
    else:
        as_of, rules_version = now(), CURRENT_RULES
        rows = count_as_of(facts, q, as_of, source.month_closures(q))
        status = "provisional: " + provisional_text(period_progress(q, _as_facts(facts), as_of))
    provisional = snapshot is None and not status.startswith("final")
    # The sender's figures are recounted as of the same instant (every fact is judged by it), so a
    # closed quarter gives the same figures each time.
    later = reporting_month_of(as_of)
    if later not in q.months and later > q.months[-1]:
        facts += list(source.facts_in_months([later]))
    senders = {t: c for t, c in count_senders(_as_facts(facts), q, as_of).items() if not region or t.startswith(region)}
    sender_rows = roll_up_senders(senders, level)
    table = score_table(rows, formula, level, region)
    by_region = {r.region: r for r in table}
    for code in sender_rows.keys() - by_region.keys():  # a township that only sent
        by_region[code] = ScoreRow(code, Counts(), None, formula.version)
    lines_of = []
    for code in sorted(by_region):
        row, sender = by_region[code], sender_rows.get(code, SenderCounts())
        lines_of.append(_cells(row, sender, check_all(targets, row.counts, sender), provisional))
    return ScoreTable(lines_of, as_of, status, rules_version)


def scores(
    quarter: Annotated[str, typer.Option("--quarter", help="Quarter (exchange cycle), e.g. 2026Q1.")],
    region: Annotated[str | None, typer.Option("--region", help="Only townships whose code starts with this prefix.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV (comma-separated, header line) instead of a table.")] = False,
    level: Annotated[Level, typer.Option("--level", help="Roll the rows up to this level.")] = Level.TOWNSHIP,
    scoring_file: Annotated[
        Path, typer.Option("--scoring-file", envvar="GATEWAY_SCORING_FILE", help="Score formula data file (a local convention).")
    ] = DEFAULT_SCORING_FILE,
    targets_file: Annotated[
        Path, typer.Option("--targets-file", envvar="GATEWAY_TARGETS_FILE", help="The seeds' targets data file.")
    ] = DEFAULT_TARGETS_FILE,
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
    try:
        targets = load_targets(targets_file)
    except DataFileError as e:
        raise _fail(f"bad targets file: {e}") from e
    if _source_provider is None:
        raise _fail("no case source configured (the database adapter is not installed)")
    table = build_rows(_source_provider(), q, region, level, formula, targets, _clock)
    lines_of, as_of, status, rules_version = table.rows, table.as_of, table.status, table.rules_version

    if csv:
        buf = io.StringIO()
        writer = csv_module.writer(buf, lineterminator="\n")
        writer.writerow(spreadsheet_row(COLUMNS))
        for cells in lines_of:
            writer.writerow(spreadsheet_row(cells))
        typer.echo(buf.getvalue(), nl=False)
        return
    rules_note = "" if rules_version != RULES_MIXED else " (closed before issue 13: notifications counted among the queries)"
    typer.echo(f"quarter {q.label} ({status}, as of {as_of.isoformat()}), accounting rules {rules_version}{rules_note}, "
               f"targets {targets.version}, score formula {formula.version} (local convention{', set by ' + formula.set_by if formula.set_by else ''})")
    lines = [list(COLUMNS), *lines_of]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    for line in lines:
        typer.echo("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip())
