"""`gateway codec …` operator commands: check an ID, validate a message file, bulk-import, schemas."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, help="Codes, validation and the wire format of exchanged records.")

TodayOption = Annotated[
    str | None,
    typer.Option("--today", help="Reference date YYYY-MM-DD for 'not in the future' (default: today in China)."),
]


def _today(value: str | None) -> date:
    from gateway.codec.rules import china_today

    if value is None:
        return china_today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"--today: not a date YYYY-MM-DD: {value!r}")
        raise typer.Exit(2) from None


@app.command("check-id")
def check_id(
    citizen_id: Annotated[str, typer.Argument(metavar="ID", help="18-character (or 15-digit legacy) citizen ID.")],
    today: TodayOption = None,
    show: Annotated[bool, typer.Option("--show", help="Also print the normalised 18-character number.")] = False,
) -> None:
    """Exit 0 printing `ok` when the ID passes GB 11643; exit 1 printing the reason otherwise."""
    from gateway.codec.citizen_id import inspect

    found = inspect(citizen_id, today=_today(today))
    if not found.valid:
        for problem in found.problems:
            typer.echo(problem)
        raise typer.Exit(1)
    typer.echo("ok")
    if show:
        typer.echo(found.number)
    for note in found.notes:
        typer.echo(f"note: {note}", err=True)


def _load_json(path: Path) -> Any:
    from gateway.codec.errors import CodecError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CodecError.single("", f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CodecError.single("", f"not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise CodecError.single("", f"not JSON ({exc})") from None


def _submission_window() -> dict[str, Any]:
    """The shipped calendar and deadline rules, as the gateway counts a notification's working days
    after learned_on (rule event_in_statistical_year), so the command judges a file as the gateway would."""
    from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, load_calendar, load_deadline_rules

    days = load_deadline_rules(DEFAULT_DEADLINES_FILE).submission_working_days
    return {"calendar": load_calendar(DEFAULT_CALENDAR_FILE), "submission_working_days": days}


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="JSON message object (with `kind`) or wire envelope.")],
    today: TodayOption = None,
) -> None:
    """Exit 0 printing `ok` when the message is valid; exit 1 printing every `path: reason`."""
    from gateway.codec.errors import CodecError
    from gateway.codec.messages import parse_message
    from gateway.codec.wire import decode

    reference = _today(today)
    try:
        obj = _load_json(file)
        if isinstance(obj, dict) and "kind" not in obj and "v" in obj and "body" in obj:
            decode(file.read_bytes(), today=reference, **_submission_window())
        else:
            parse_message(obj, today=reference, **_submission_window())
    except CodecError as err:
        for e in err.errors:
            typer.echo(str(e))
        raise typer.Exit(1) from None
    typer.echo("ok")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE", help=".csv or .xlsx with Chinese column headers.")],
    kind: Annotated[str, typer.Option("--kind", help="query or notification.")] = "query",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report (with the good records) as JSON.")] = False,
    today: TodayOption = None,
) -> None:
    """Import rows as queries or notifications; report good and bad rows. Exit 1 if any row is bad."""
    from gateway.codec.bulk_import import import_file

    if kind not in ("query", "notification"):
        typer.echo(f"--kind must be query or notification, got {kind!r}")
        raise typer.Exit(2)

    def progress(done: int, total: int | None) -> None:
        if not as_json:
            typer.echo(f"… {done} rows" + (f" of {total}" if total else ""), err=True)

    report = import_file(file, kind, today=_today(today), progress=progress, **_submission_window())  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for problem in report.file_errors:
            typer.echo(problem)
        for error in report.errors:
            typer.echo(str(error))
        typer.echo(
            f"good: {len(report.good)}, bad: {len(report.bad_rows)}, blank: {len(report.blank_rows)}"
            + (f" (rows {', '.join(map(str, report.blank_rows))})" if report.blank_rows else "")
        )
    if report.file_errors:
        raise typer.Exit(2)
    if report.errors:
        raise typer.Exit(1)


@app.command()
def schemas(
    check: Annotated[bool, typer.Option("--check", help="Only report drift; exit 1 if the files are stale.")] = False,
    templates: Annotated[bool, typer.Option("--templates", help="Also regenerate the import templates.")] = False,
) -> None:
    """Regenerate the JSON Schemas in schemas/json/ from the models."""
    from gateway.codec import json_schemas

    if check:
        stale = json_schemas.drift()
        for name in stale:
            typer.echo(f"stale: {name}")
        if stale:
            raise typer.Exit(1)
        typer.echo("ok")
        return
    for path in json_schemas.write():
        typer.echo(f"wrote {path}")
    if templates:
        from gateway.codec.import_templates import write_templates

        for path in write_templates():
            typer.echo(f"wrote {path}")
