"""Bulk entry: CSV and Excel (.xlsx) files with Chinese column headers become queries or
notifications. Every bad row is reported with its row number, column and reason; every good
row comes through; blank rows are counted, never silently dropped.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from gateway.codec import code_tables
from gateway.codec.error_paths import field_errors
from gateway.codec.import_columns import LAYOUTS, Column
from gateway.codec.messages import Notification, Query
from gateway.codec.rules import submission_context
from gateway.codec.xlsx_guard import ImportLimits, Refused, check_xlsx
from gateway.workflow.calendar import WorkingDayCalendar

Kind = Literal["query", "notification"]
Progress = Callable[[int, int | None], None]
PROGRESS_EVERY = 1000
# Columns a sheet may use beyond its template's: room for a clerk's own notes column or two, reported
# per row ("value beyond the last named column"), while a cell far to the right refuses the file.
COLUMN_MARGIN = 16

_TRUE = {"是", "y", "yes", "true", "1", "√", "t"}
_FALSE = {"否", "n", "no", "false", "0", "×", "f"}
_DATE_FORMS = (re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"), re.compile(r"(\d{4})(\d{2})(\d{2})"))


@dataclass(frozen=True, slots=True)
class CellError:
    row: int  # as the spreadsheet numbers it: the header is row 1
    column: str  # the header text, or "" when no column holds the field
    field: str  # dotted path in the message
    reason: str

    def __str__(self) -> str:
        where = f"column {self.column}" if self.column else f"field {self.field}"
        return f"row {self.row}, {where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class GoodRow:
    row: int
    message: Query | Notification


@dataclass(slots=True)
class ImportReport:
    kind: Kind
    good: list[GoodRow] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)
    blank_rows: list[int] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)  # problems that stop the whole file
    rows_read: int = 0

    @property
    def bad_rows(self) -> list[int]:
        return sorted({e.row for e in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors and not self.file_errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows_read": self.rows_read,
            "good": len(self.good),
            "bad": len(self.bad_rows),
            "blank_rows": self.blank_rows,
            "file_errors": self.file_errors,
            "errors": [
                {"row": e.row, "column": e.column, "field": e.field, "reason": e.reason} for e in self.errors
            ],
            "records": [
                {"row": g.row, "message": g.message.model_dump(mode="json", exclude_none=True)} for g in self.good
            ],
        }


class CellProblem(ValueError):
    pass


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _as_id(value: Any) -> str:
    if isinstance(value, (int, float)):
        # Excel stores long numbers as floats and keeps only 15 significant digits.
        raise CellProblem("stored as a number, which loses digits: format the column as text")
    return _text(value)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise CellProblem("must be a date without a time of day")
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    for form in _DATE_FORMS:
        if m := form.fullmatch(text):
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                raise CellProblem(f"impossible date {text}") from None
    raise CellProblem(f"not a date: {text!r} (use YYYY-MM-DD)")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise CellProblem("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise CellProblem(f"must be a whole number, got {value}")
    text = _text(value)
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    raise CellProblem(f"must be a whole number, got {text!r}")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CellProblem(f"must be 是 or 否, got {text!r}")


def _as_code(value: Any, table_name: str) -> str:
    text = _text(value)
    code = code_tables.code_for_input(table_name, text)
    if code is None:
        raise CellProblem(f"unknown code {text!r} in table {code_tables.table(table_name).describe()}")
    return code


def _as_choice(value: Any, choices: tuple[tuple[str, str], ...]) -> str:
    text = _text(value)
    for label, code in choices:
        if text in (label, code):
            return code
    raise CellProblem(f"must be one of {', '.join(label for label, _ in choices)}, got {text!r}")


def convert(column: Column, value: Any) -> Any:
    if column.kind == "date":
        return _as_date(value)
    if column.kind == "int":
        return _as_int(value)
    if column.kind == "bool":
        return _as_bool(value)
    if column.kind == "code":
        assert column.table is not None
        return _as_code(value, column.table)
    if column.kind == "id":
        return _as_id(value)
    if column.kind == "choice":
        return _as_choice(value, column.choices)
    return _text(value)


def _place(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        target = target.setdefault(p, {})
    target[leaf] = value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class Importer:
    """Turns rows (header first) into messages; the reading of files is separate (below)."""

    def __init__(
        self,
        kind: Kind,
        *,
        today: date | None = None,
        limits: ImportLimits | None = None,
        calendar: WorkingDayCalendar | None = None,
        submission_working_days: int | None = None,
    ) -> None:
        self.kind: Kind = kind
        self.limits = limits or ImportLimits()
        self.columns = {c.header: c for c in LAYOUTS[kind]}
        self.by_path = {c.path: c.header for c in LAYOUTS[kind]}
        self.model = Query if kind == "query" else Notification
        # The calendar counts a notification's working days after learned_on (event_in_statistical_year)
        # as the submission will, so a row is not refused here that the gateway would accept.
        context = {"today": today} if today else {}
        context.update(submission_context(calendar, submission_working_days))
        self.context = context or None

    def run(self, rows: Iterable[tuple[Any, ...]], total: int | None = None, progress: Progress | None = None) -> ImportReport:
        report = ImportReport(self.kind)
        it = iter(rows)
        header = next(it, None)
        if header is None:
            report.file_errors.append("the file is empty: no header row")
            return report
        layout = self._layout(header, report)
        if report.file_errors:
            return report
        pending_blank: list[int] = []
        max_rows = self.limits.max_rows
        for number, row in enumerate(it, start=2):
            if number - 1 > max_rows:
                # Counted while streaming: a million-row file stops here, at the limit + 1.
                return _too_many_rows(self.kind, max_rows)
            if all(_blank(v) for v in row):
                # Blank rows between records are reported; those after the last record are
                # just the end of a formatted sheet.
                pending_blank.append(number)
                continue
            report.blank_rows.extend(pending_blank)
            report.rows_read += len(pending_blank) + 1
            pending_blank.clear()
            self._row(number, row, layout, report)
            if progress is not None and report.rows_read % PROGRESS_EVERY == 0:
                progress(report.rows_read, total)
        if progress is not None:
            progress(report.rows_read, total)
        return report

    def _layout(self, header: tuple[Any, ...], report: ImportReport) -> list[Column | None]:
        layout: list[Column | None] = []
        seen: set[str] = set()
        for i, cell in enumerate(header, start=1):
            name = _text(cell) if cell is not None else ""
            name = name.lstrip("\ufeff")
            if not name:
                layout.append(None)  # an unnamed column must stay empty; checked per row
                continue
            column = self.columns.get(name) or self.columns.get(self.by_path.get(name, ""), None)
            if column is None:
                report.file_errors.append(f"row 1, column {i}: unknown column {name!r} for {self.kind} import")
            elif column.header in seen:
                report.file_errors.append(f"row 1, column {i}: column {name!r} appears twice")
            else:
                seen.add(column.header)
            layout.append(column)
        missing = [c.header for c in self.columns.values() if c.required and c.header not in seen]
        if missing:
            report.file_errors.append(f"row 1: missing required column(s) {', '.join(missing)}")
        return layout

    def _row(self, number: int, row: tuple[Any, ...], layout: list[Column | None], report: ImportReport) -> None:
        record: dict[str, Any] = {"kind": self.kind}
        errors: list[CellError] = []
        if len(row) > len(layout) and any(not _blank(v) for v in row[len(layout) :]):
            errors.append(CellError(number, f"#{len(layout) + 1}", "", "value beyond the last named column"))
        for column, value in zip(layout, row, strict=False):
            if _blank(value):
                continue
            if column is None:
                errors.append(CellError(number, "(unnamed)", "", "value in a column without a header"))
                continue
            try:
                _place(record, column.path, convert(column, value))
            except CellProblem as exc:
                errors.append(CellError(number, column.header, column.path, str(exc)))
        try:
            message = self.model.model_validate(record, strict=False, context=self.context)
        except ValidationError as exc:
            # A cell that failed conversion is already reported; its absence would only be
            # reported again as "required".
            failed = {e.field for e in errors}
            errors.extend(
                CellError(number, self._header_for(fe.path), fe.path, fe.reason)
                for fe in field_errors(exc)
                if fe.path not in failed
            )
        if errors:
            report.errors.extend(errors)
            return
        report.good.append(GoodRow(number, message))

    def _header_for(self, path: str) -> str:
        while path:
            if path in self.by_path:
                return self.by_path[path]
            path = path.rpartition(".")[0]
        return ""


def _too_many_rows(kind: Kind, max_rows: int) -> ImportReport:
    # The whole file is refused (nothing is sent): a clerk splits it and sends both halves, rather
    # than finding out which of its rows went through.
    report = ImportReport(kind)
    report.file_errors.append(
        f"more than {max_rows} rows (GATEWAY_IMPORT_MAX_ROWS): split the file and import each part"
    )
    return report


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Chinese Windows saves CSV in the ANSI code page (GBK ⊂ GB 18030).
        return data.decode("gb18030")


def csv_rows(path: Path) -> Iterator[tuple[Any, ...]]:
    text = _decode_text(path.read_bytes())
    for row in csv.reader(io.StringIO(text, newline="")):
        yield tuple(row)


def xlsx_rows(path: Path, limits: ImportLimits | None = None) -> tuple[Iterator[tuple[Any, ...]], int | None]:
    """The first sheet's rows. python-calamine (Rust) reads 14–24× faster than openpyxl and gives the
    same cells (bench/bench_import.py, docs/codec-import.md); it reads the sheet at once, so the file
    is checked first (`check_xlsx`: unpacked size, shared strings, no DTD) and its row count is
    refused before any row is converted."""
    from python_calamine import CalamineWorkbook

    limits = limits or ImportLimits()
    check_xlsx(path, limits)
    book = CalamineWorkbook.from_path(str(path))
    try:
        sheet = book.get_sheet_by_index(0)
    except Exception:
        book.close()
        raise
    if sheet.height - 1 > limits.max_rows:
        book.close()
        raise _TooManyRows
    total = max(sheet.height - 1, 0) or None

    def rows() -> Iterator[tuple[Any, ...]]:
        try:
            for row in sheet.iter_rows():
                yield tuple(None if v == "" else v for v in row)
        finally:
            book.close()

    return rows(), total


class _TooManyRows(Exception):
    pass


def sheet_limits(limits: ImportLimits, kind: Kind) -> ImportLimits:
    """The limits of one import, its column cap narrowed to what its template can use."""
    return dataclasses.replace(limits, max_columns=min(limits.max_columns, len(LAYOUTS[kind]) + COLUMN_MARGIN))


def import_file(
    path: Path | str,
    kind: Kind,
    *,
    today: date | None = None,
    progress: Progress | None = None,
    limits: ImportLimits | None = None,
    calendar: WorkingDayCalendar | None = None,
    submission_working_days: int | None = None,
) -> ImportReport:
    path = Path(path)
    limits = sheet_limits(limits or ImportLimits(), kind)
    importer = Importer(kind, today=today, limits=limits, calendar=calendar,
                        submission_working_days=submission_working_days)
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            rows, total = xlsx_rows(path, limits)
        elif suffix in (".csv", ".txt"):
            rows, total = csv_rows(path), None
        else:
            report = ImportReport(kind)
            report.file_errors.append(f"{path.name}: unsupported file type (use .csv or .xlsx)")
            return report
        return importer.run(rows, total=total, progress=progress)
    except _TooManyRows:
        return _too_many_rows(kind, limits.max_rows)
    except Refused as exc:
        report = ImportReport(kind)
        report.file_errors.append(f"{path.name}: {exc}")
        return report
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault, reported as such
        # The readers raise many types on files that are not workbooks (calamine's CalamineError,
        # XmlError, ZipError; csv.Error; UnicodeDecodeError …); none may become a server error.
        report = ImportReport(kind)
        report.file_errors.append(f"{path.name}: cannot read ({type(exc).__name__}: {str(exc)[:200]})")
        return report
