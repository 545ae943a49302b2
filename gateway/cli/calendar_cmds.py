"""`gateway calendar …` operator commands: working days, deadlines and reporting periods.

Outputs are an interface read by scripts; keep them exact:

* ``add-working-days DATE N`` → ``YYYY-MM-DD``
* ``deadline --received INSTANT --kind KIND`` → ``2026-02-04T00:00:00+08:00`` [`` provisional``]
* ``period INSTANT`` → ``2026-03 2026Q1``

Bad input exits with code 2 and a message on stderr.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from gateway.workflow.calendar import WorkingDayCalendar, add_working_days
from gateway.workflow.data_files import (
    DEFAULT_CALENDAR_FILE,
    DEFAULT_DEADLINES_FILE,
    DataFileError,
    load_calendar,
    load_deadline_rules,
)
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet, deadline_for
from gateway.workflow.instants import SHANGHAI
from gateway.workflow.periods import reporting_month_of

app = typer.Typer(
    no_args_is_help=True,
    help="Working-day calendar (State Council holidays and 调休), reply deadlines and reporting periods.",
)

INSTANT_HELP = (
    "ISO 8601 instant, e.g. 2026-02-01T09:30:00+08:00 or 2026-02-01T01:30:00Z. "
    "An offset or Z is honoured; an instant without one is taken as UTC."
)

CalendarFileOpt = Annotated[
    Path,
    typer.Option(
        "--calendar-file",
        envvar="GATEWAY_CALENDAR_FILE",
        help="Operator calendar data (extends/overrides the chinesecalendar package).",
    ),
]
RulesFileOpt = Annotated[
    Path,
    typer.Option("--rules-file", envvar="GATEWAY_DEADLINES_FILE", help="Deadline rule-set (working days per kind)."),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _calendar(path: Path) -> WorkingDayCalendar:
    try:
        return load_calendar(path)
    except DataFileError as e:
        raise _fail(f"bad calendar file: {e}") from e


def _rules(path: Path) -> DeadlineRuleSet:
    try:
        return load_deadline_rules(path)
    except DataFileError as e:
        raise _fail(f"bad deadline rules file: {e}") from e


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant as aware UTC; a naive one is taken as UTC."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise typer.BadParameter(f"not an ISO 8601 instant: {text!r} (example: 2026-02-01T09:30:00+08:00)") from e
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as e:
        raise typer.BadParameter(f"not a date YYYY-MM-DD: {text!r}") from e


@app.command("add-working-days")
def add_working_days_cmd(
    day: Annotated[str, typer.Argument(metavar="DATE", help="Start date YYYY-MM-DD (not counted itself).")],
    n: Annotated[int, typer.Argument(metavar="N", help="Number of working days to add (>= 0).")],
    calendar_file: CalendarFileOpt = DEFAULT_CALENDAR_FILE,
) -> None:
    """Print the date N working days after DATE (DATE itself not counted), as YYYY-MM-DD.

    If the count crosses a year whose holiday schedule is not published, the date is computed with
    Monday-Friday for that year and a warning goes to stderr.
    """
    start = _parse_date(day)
    if n < 0:
        raise typer.BadParameter(f"N must be >= 0, got {n}", param_hint="N")
    result = add_working_days(_calendar(calendar_file), start, n)
    typer.echo(result.day.isoformat())
    if result.provisional:
        typer.echo("warning: provisional (reaches a year whose holiday schedule is not published)", err=True)


@app.command("deadline")
def deadline_cmd(
    received: Annotated[str, typer.Option("--received", help=INSTANT_HELP)],
    kind: Annotated[CaseKind, typer.Option("--kind", help="Kind of message received.")],
    registration_township: Annotated[
        str | None,
        typer.Option("--registration-township", help="9-digit code of the replying township (applies its province's override)."),
    ] = None,
    calendar_file: CalendarFileOpt = DEFAULT_CALENDAR_FILE,
    rules_file: RulesFileOpt = DEFAULT_DEADLINES_FILE,
) -> None:
    """Print the reply deadline: 24:00 CST of the last working day, written as the next day 00:00+08:00.

    The day of receipt is not counted. ' provisional' follows when the deadline reaches a year whose
    holiday schedule is not published yet.
    """
    instant = parse_instant(received)
    if registration_township is not None and not (len(registration_township) == 9 and registration_township.isdigit()):
        raise typer.BadParameter("must be a 9-digit township code", param_hint="--registration-township")
    result = deadline_for(kind, instant, _rules(rules_file), _calendar(calendar_file), registration_township)
    line = result.due_at.astimezone(SHANGHAI).isoformat()
    typer.echo(f"{line} provisional" if result.provisional else line)


@app.command("period")
def period_cmd(instant: Annotated[str, typer.Argument(metavar="ISO_INSTANT", help=INSTANT_HELP)]) -> None:
    """Print the reporting month and quarter of an instant, e.g. '2026-03 2026Q1' (cutoff: 24:00 CST on the 20th)."""
    month = reporting_month_of(parse_instant(instant))
    typer.echo(f"{month.label} {month.quarter.label}")


@app.command("info")
def info_cmd(calendar_file: CalendarFileOpt = DEFAULT_CALENDAR_FILE) -> None:
    """Print the calendar version and the range of published years."""
    calendar = _calendar(calendar_file)
    years = calendar.published_years()
    typer.echo(f"version {calendar.version}")
    typer.echo(f"published {years[0]}-{years[-1]}" if years else "published none")
    gaps = [y for y in range(years[0], years[-1] + 1) if not calendar.is_published(y)] if years else []
    if gaps:
        typer.echo("missing " + " ".join(map(str, gaps)))
