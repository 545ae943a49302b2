"""`gateway reports monthly|half-year|annual --period P --region CODE [--xlsx FILE] [--csv]`.

The seeds' reports (gateway.workflow.reports) for a closed period, from the stored cases: the
frozen accounting of its month or quarters (summed), and the sender's figures recounted as of the
last close. Nothing depends on when the command runs, so the same archive gives the same report.
Cases are read through the same `CaseSource` as `gateway scores`.
"""

from __future__ import annotations

import csv as csv_module
import io
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer

from gateway.codec.text_hygiene import spreadsheet_row

from gateway.workflow.accounting import RULES_MIXED, AccountingSnapshot, Counts, Level, _as_facts, percent, roll_up
from gateway.workflow.periods import ReportingMonth
from gateway.workflow.ports import CaseSource
from gateway.workflow.reports import ReportKind, ReportPeriod, report_period
from gateway.workflow.sender_accounting import SenderCounts, count_senders, roll_up_senders

app = typer.Typer(help="The seeds' reports: monthly summary table, half-year and annual reports, for closed periods.")

_source_provider: Callable[[], CaseSource] | None = None

COLUMNS = (
    "region", "level",
    # as the township that must reply: queries (rule 十三) …
    "received", "answered", "on_time", "late", "overdue", "still_open", "no_such_person", "missed_management",
    "feedback_rate", "timely_rate", "matching_rate",
    # … and, apart, notifications (第二十四条: 5 working days)
    "notifications_received", "notifications_on_time", "notifications_late", "notifications_overdue",
    "notifications_open", "notification_timely_rate",
    # as the sender (第三十一条)
    "queries_sent", "own_error_no_such_person", "accuracy", "notifications_sent", "notifications_submitted_on_time",
    "submission_rate", "reverifications_opened", "reverifications_done", "mean_reverification_days",
)
_LEVELS = {9: Level.TOWNSHIP, 6: Level.COUNTY, 4: Level.CITY, 2: Level.PROVINCE}


def configure(source_provider: Callable[[], CaseSource]) -> None:
    global _source_provider
    _source_provider = source_provider


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _days(value: Fraction | None) -> str:
    return "—" if value is None else f"{float(round(value, 1)):.1f}"


def _cells(region: str, c: Counts, s: SenderCounts) -> list[str]:
    return [
        region, _LEVELS[len(region)].value,
        *(str(getattr(c, n)) for n in COLUMNS[2:10]),
        percent(c.feedback_rate), percent(c.timely_rate), percent(c.matching_rate),
        *(str(getattr(c, n)) for n in COLUMNS[13:18]),
        percent(c.notification_timely_rate),
        str(s.queries_sent), str(s.own_error_no_such_person), percent(s.accuracy), str(s.notifications_sent),
        str(s.notifications_on_time), percent(s.submission_rate), str(s.reverifications_opened),
        str(s.reverifications_done), _days(s.mean_reverification_days),
    ]


class PeriodNotClosed(ValueError):
    """A report asked for a period one of whose months or quarters is not closed yet."""


def _snapshots(source: CaseSource, period: ReportPeriod) -> list[AccountingSnapshot]:
    parts = period.quarters or period.months
    snapshots = []
    for part in parts:
        snapshot = source.period_snapshot(part)
        if snapshot is None:
            what = "quarter" if period.quarters else "reporting month"
            raise PeriodNotClosed(f"{period.kind} report {period.label}: {what} {part} is not closed yet; a report is "
                                  "made for a closed period only")
        snapshots.append(snapshot)
    return snapshots


def build_rows(source: CaseSource, period: ReportPeriod, region: str) -> tuple[list[list[str]], list[AccountingSnapshot]]:
    snapshots = _snapshots(source, period)
    as_of = max(s.closed_at for s in snapshots)
    reply: dict[str, Counts] = {}
    for snapshot in snapshots:
        for township, counts in snapshot.rows:
            if township.startswith(region):
                reply[township] = reply.get(township, Counts()) + counts
    # The month after the period: a correction sent between the cutoff and the close completes a re-visit.
    months: list[ReportingMonth] = [*period.months, period.months[-1].next()]
    facts = list(_as_facts(source.facts_in_months(months)))
    sender = {t: c for t, c in count_senders(facts, period.months, as_of).items() if t.startswith(region)}
    level = _LEVELS[len(region)]
    codes = sorted(reply.keys() | sender.keys())
    rows = [_cells(t, reply.get(t, Counts()), sender.get(t, SenderCounts())) for t in codes]
    if level is not Level.TOWNSHIP:
        rows.append(_cells(region, roll_up(reply, level).get(region, Counts()),
                           roll_up_senders(sender, level).get(region, SenderCounts())))
    return rows, snapshots


def _preamble(period: ReportPeriod, region: str, snapshots: list[AccountingSnapshot]) -> list[str]:
    lines = [
        f"{period.title}",
        f"period {period.label}: reporting months {period.months[0]} … {period.months[-1]}; region {region}",
        f"as of {max(s.closed_at for s in snapshots).isoformat()} (the close of {snapshots[-1].period})",
        f"source: {period.source}",
    ]
    if period.due is not None:
        lines.append(f"due: township by {period.due.township}, county by {period.due.county}, city by {period.due.city}")
    else:
        lines.append("due: the seed gives no day for the township's monthly table; it is final when its month closes")
    if any(s.rules_version == RULES_MIXED for s in snapshots):
        lines.append("note: closed before issue 13 — its notifications are counted among the queries")
    return lines


def _report(kind: ReportKind, period_text: str, region: str, xlsx: Path | None, csv: bool) -> None:
    try:
        period = report_period(kind, period_text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--period") from e
    if not (region.isdigit() and len(region) in _LEVELS):
        raise typer.BadParameter("must be a 2, 4, 6 or 9-digit division code", param_hint="--region")
    if _source_provider is None:
        raise _fail("no case source configured (the database adapter is not installed)")
    try:
        rows, snapshots = build_rows(_source_provider(), period, region)
    except PeriodNotClosed as e:
        raise _fail(str(e)) from e
    preamble = _preamble(period, region, snapshots)
    if xlsx is not None:
        _write_xlsx(xlsx, preamble, rows)
    if csv:
        buf = io.StringIO()
        writer = csv_module.writer(buf, lineterminator="\n")
        writer.writerow(spreadsheet_row(COLUMNS))
        writer.writerows(spreadsheet_row(row) for row in rows)
        typer.echo(buf.getvalue(), nl=False)
        return
    if xlsx is not None:
        typer.echo(f"wrote {xlsx} ({len(rows)} rows)")
        return
    for line in preamble:
        typer.echo(line)
    lines = [list(COLUMNS), *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    for line in lines:
        typer.echo("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip())


def _write_xlsx(path: Path, preamble: list[str], rows: list[list[str]]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "report"
    for line in preamble:
        sheet.append(spreadsheet_row([line]))
    sheet.append([])
    sheet.append(spreadsheet_row(COLUMNS))
    for row in rows:
        sheet.append(spreadsheet_row([row[0], row[1], *(_number(c) for c in row[2:])]))  # codes stay text; counts are numbers
    book.save(path)


def _number(cell: str) -> int | str:
    return int(cell) if cell.isdigit() else cell


Region = Annotated[str, typer.Option("--region", help="Division code: township (9), county (6), city (4) or province (2).")]
Xlsx = Annotated[Path | None, typer.Option("--xlsx", help="Also write the report to this Excel file.")]
Csv = Annotated[bool, typer.Option("--csv", help="CSV (comma-separated, header line) instead of a table.")]


@app.command("monthly")
def monthly(
    period: Annotated[str, typer.Option("--period", help="Reporting month, e.g. 2026-03.")],
    region: Region,
    xlsx: Xlsx = None,
    csv: Csv = False,
) -> None:
    """The monthly summary table (汇总表, 一月一报告) of a closed reporting month."""
    _report(ReportKind.MONTHLY, period, region, xlsx, csv)


@app.command("half-year")
def half_year(
    period: Annotated[str, typer.Option("--period", help="Statistical half-year, e.g. 2026H1 (Oct 2025 – Mar 2026).")],
    region: Region,
    xlsx: Xlsx = None,
    csv: Csv = False,
) -> None:
    """The half-year report (省表二/三, exchange part), due by the 13th/16th/20th of April."""
    _report(ReportKind.HALF_YEAR, period, region, xlsx, csv)


@app.command("annual")
def annual(
    period: Annotated[str, typer.Option("--period", help="Statistical year, e.g. 2026 (Oct 2025 – Sep 2026).")],
    region: Region,
    xlsx: Xlsx = None,
    csv: Csv = False,
) -> None:
    """The annual report (省表五 and 省表二/三, exchange part), due by the 13th/16th/20th of October."""
    _report(ReportKind.ANNUAL, period, region, xlsx, csv)
