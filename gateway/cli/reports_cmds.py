"""`gateway reports monthly|half-year|annual --period P --region CODE [--xlsx FILE] [--csv]`.

The seeds' reports (gateway.workflow.reports) from the stored cases: the frozen accounting of its month
or quarters (summed) once they are final, and the sender's figures recounted as of the last close, so
the same archive gives the same report. A part not final yet (gateway.workflow.finality: a deadline of
its cases still runs) is counted as of the moment, and the report says it is provisional and why; a
period that has not begun is refused. Cases are read through the same `CaseSource` as `gateway scores`.
"""

from __future__ import annotations

import csv as csv_module
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer

from gateway.codec.text_hygiene import spreadsheet_row

from gateway.workflow.accounting import (
    RULES_DEADLINE,
    RULES_MIXED,
    Counts,
    Level,
    _as_facts,
    count_as_of,
    percent,
    roll_up,
)
from gateway.workflow.events import EventCounts, count_events, roll_up_events
from gateway.workflow.finality import (
    BEFORE_RECORDS,
    PeriodProgress,
    before_records,
    final_text,
    period_progress,
    provisional_text,
    records_begin,
)
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.ports import CaseSource
from gateway.workflow.reports import ReportKind, ReportPeriod, report_period
from gateway.workflow.sender_accounting import SenderCounts, count_senders, roll_up_senders

app = typer.Typer(help="The seeds' reports: monthly summary table, half-year and annual reports, for closed periods.")

_source_provider: Callable[[], CaseSource] | None = None
_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # noqa: E731

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
    # issue 23, added at the end: events ①–④ by the date of the event, in the statistical half-year or year
    # (for the residence township; "—" in the monthly table, which counts exchanges only) …
    "events_births", "events_operations", "events_contraception_due", "events_pregnancies",
    # … and 1 while a part of the period is not final yet (its figures can still move)
    "provisional",
)
_LEVELS = {9: Level.TOWNSHIP, 6: Level.COUNTY, 4: Level.CITY, 2: Level.PROVINCE}


def configure(source_provider: Callable[[], CaseSource], clock: Callable[[], datetime] | None = None) -> None:
    """Install the case source (and optionally a clock, for tests: it dates a provisional report)."""
    global _source_provider, _clock
    _source_provider = source_provider
    if clock is not None:
        _clock = clock


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _days(value: Fraction | None) -> str:
    return "—" if value is None else f"{float(round(value, 1)):.1f}"


def _cells(region: str, c: Counts, s: SenderCounts, e: EventCounts | None, provisional: bool) -> list[str]:
    events = ["—"] * 4 if e is None else [str(e.births), str(e.operations), str(e.contraception_due), str(e.pregnancies)]
    return [
        region, _LEVELS[len(region)].value,
        *(str(getattr(c, n)) for n in COLUMNS[2:10]),
        percent(c.feedback_rate), percent(c.timely_rate), percent(c.matching_rate),
        *(str(getattr(c, n)) for n in COLUMNS[13:18]),
        percent(c.notification_timely_rate),
        str(s.queries_sent), str(s.own_error_no_such_person), percent(s.accuracy), str(s.notifications_sent),
        str(s.notifications_on_time), percent(s.submission_rate), str(s.reverifications_opened),
        str(s.reverifications_done), _days(s.mean_reverification_days), *events, str(int(provisional)),
    ]


@dataclass(frozen=True)
class Part:
    """One month or quarter of a report: frozen when final, else counted as of the report's instant."""

    period: ReportingMonth | Quarter
    rows: dict[str, Counts]
    as_of: datetime
    rules_version: str
    progress: PeriodProgress | None  # None: final (closed, or before the gateway's records began)
    before_records: bool = False  # final and empty: no case by construction, and never closed by the tracker

    @property
    def status(self) -> str:
        if self.before_records:
            return BEFORE_RECORDS
        return final_text(self.as_of) if self.progress is None else provisional_text(self.progress)


def _parts(source: CaseSource, period: ReportPeriod, now: datetime) -> list[Part]:
    parts = period.quarters or period.months
    if now < parts[0].starts_at:
        raise _fail(f"{period.kind} report {period.label} has not begun: its first reporting month starts "
                    f"{parts[0].starts_at.isoformat()}")
    out = []
    begins = records_begin(source.first_known_month(), now)
    for part in parts:
        snapshot = source.period_snapshot(part)
        if snapshot is not None:
            out.append(Part(part, snapshot.as_dict(), snapshot.closed_at, snapshot.rules_version, None))
            continue
        if before_records(part, begins):  # as of the records' beginning: nothing before it is counted
            out.append(Part(part, {}, min(now, begins.starts_at), RULES_DEADLINE, None, before_records=True))
            continue
        if now < part.starts_at:
            out.append(Part(part, {}, now, RULES_DEADLINE, period_progress(part, (), now)))
            continue
        quarter = part if isinstance(part, Quarter) else part.quarter
        closures = {m: t for m, t in source.month_closures(quarter).items() if m in _months_of(part)}
        facts = list(_as_facts(source.facts_in_months(_months_of(part))))
        out.append(Part(part, count_as_of(facts, part, now, closures), now, RULES_DEADLINE,
                        period_progress(part, facts, now)))
    return out


def _months_of(part: ReportingMonth | Quarter) -> tuple[ReportingMonth, ...]:
    return part.months if isinstance(part, Quarter) else (part,)


def build_rows(source: CaseSource, period: ReportPeriod, region: str,
               now: datetime | None = None) -> tuple[list[list[str]], list[Part]]:
    now = _clock() if now is None else now
    parts = _parts(source, period, now)
    as_of = max(p.as_of for p in parts)
    provisional = any(p.progress is not None for p in parts)
    reply: dict[str, Counts] = {}
    for part in parts:
        for township, counts in part.rows.items():
            if township.startswith(region):
                reply[township] = reply.get(township, Counts()) + counts
    # The month after the period: a correction sent between the cutoff and the close completes a re-visit.
    months: list[ReportingMonth] = [*period.months, period.months[-1].next()]
    facts = list(_as_facts(source.facts_in_months(months)))
    sender = {t: c for t, c in count_senders(facts, period.months, as_of).items() if t.startswith(region)}
    events: dict[str, EventCounts] | None = None
    if period.events_from is not None and period.events_to is not None:
        dated = source.events_dated(period.events_from, period.events_to)
        # Not as of the close: events of the last days are notified after the exchange months closed.
        events_at = period.events_as_of(now)
        events = {t: c for t, c in count_events(dated, period.events_from, period.events_to, events_at).items()
                  if t.startswith(region)}
    level = _LEVELS[len(region)]
    codes = sorted(reply.keys() | sender.keys() | (events or {}).keys())

    def events_of(code: str, found: dict[str, EventCounts] | None) -> EventCounts | None:
        return None if found is None else found.get(code, EventCounts())

    rows = [_cells(t, reply.get(t, Counts()), sender.get(t, SenderCounts()), events_of(t, events), provisional)
            for t in codes]
    if level is not Level.TOWNSHIP:
        rolled = None if events is None else roll_up_events(events, level)
        rows.append(_cells(region, roll_up(reply, level).get(region, Counts()),
                           roll_up_senders(sender, level).get(region, SenderCounts()), events_of(region, rolled), provisional))
    return rows, parts


def _preamble(period: ReportPeriod, region: str, parts: list[Part], now: datetime) -> list[str]:
    as_of = max(p.as_of for p in parts)
    provisional = [p for p in parts if p.progress is not None]
    lines = [
        f"{period.title}",
        f"period {period.label}: reporting months {period.months[0]} … {period.months[-1]}; region {region}",
        *(f"counted: {rule}" for rule in period.rules()),
        f"as of {as_of.isoformat()} ({_as_of_what(parts)})",
        f"source: {period.source}",
    ]
    if period.due is not None:
        lines.append(f"due: township by {period.due.township}, county by {period.due.county}, city by {period.due.city}")
    else:
        lines.append(f"due: {period.due_day.isoformat()}, the month's 20th (工作制度 七); replies due after it are "
                     "counted here, in the month of their query, until the month is final")
    early = [p for p in parts if p.before_records]
    if provisional:
        status = "; ".join(f"{p.period} {p.status}" for p in provisional)
    else:
        status = BEFORE_RECORDS if len(early) == len(parts) else final_text(as_of)
    lines.append("status: " + status)
    if early:
        lines.append(f"note: {early[0].period} … {early[-1].period} {BEFORE_RECORDS} — before this gateway's records "
                     "began: final, with empty figures")
    if provisional:
        lines.append("note: provisional (进行中) — not judged against any target until final")
    if period.events_from is not None:
        events_at = period.events_as_of(now)
        lines.append(f"note: events are those notified by {events_at.isoformat()}; notifications tracked before revision "
                     "0011 kept no kind and are not among them")
    if any(p.rules_version == RULES_MIXED for p in parts):
        lines.append("note: closed before issue 13 — its notifications are counted among the queries")
    if any(p.rules_version not in (RULES_DEADLINE,) for p in parts):
        lines.append("note: closed before issue 23 — a reply after its month's close counted late even inside its "
                     "deadline (accounting rules " + ", ".join(sorted({p.rules_version for p in parts})) + ")")
    return lines


def _as_of_what(parts: list[Part]) -> str:
    if any(p.progress is not None for p in parts):
        return "provisional"
    if all(p.before_records for p in parts):
        return "the beginning of this gateway's records"
    return "the close of " + str(parts[-1].period)


def _report(kind: ReportKind, period_text: str, region: str, xlsx: Path | None, csv: bool) -> None:
    try:
        period = report_period(kind, period_text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--period") from e
    if not (region.isdigit() and len(region) in _LEVELS):
        raise typer.BadParameter("must be a 2, 4, 6 or 9-digit division code", param_hint="--region")
    if _source_provider is None:
        raise _fail("no case source configured (the database adapter is not installed)")
    now = _clock()
    rows, parts = build_rows(_source_provider(), period, region, now)
    preamble = _preamble(period, region, parts, now)
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
    """The monthly summary table (汇总表, 一月一报告) of a reporting month, due on its 20th; provisional until final."""
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
