"""Import files are parsed in a worker process, never on the event loop.

Reading and validating 20,000 rows takes seconds of CPU; on the event loop that stalls every request,
consumer and the outbox relay of the gateway, and a hostile workbook could also leave its memory behind.
So the parse runs in a separate process (spawned, not forked: the gateway process holds threads and
broker connections), and each process does one import and exits (`max_tasks_per_child=1`), giving back
everything the parse took. The replacement starts at once and loads the codec before the next upload
comes, so an import does not pay for the start-up.

The codec's overrides (GATEWAY_CODEC_OVERRIDES_DIR) reach the worker through the environment, which it
inherits when it starts.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from gateway.codec.bulk_import import ImportReport, Kind, import_file
from gateway.codec.xlsx_guard import ImportLimits
from gateway.workflow.calendar import WorkingDayCalendar


def _warm_up() -> None:
    # Loaded before the first task: the code tables and the 41,352 divisions.
    from gateway.codec import code_tables, divisions

    divisions.registry()
    code_tables.table("sex")


@dataclass(frozen=True, slots=True)
class ParsedImport:
    """What comes back from the worker, in plain values: unpickling 20,000 `CellError` dataclasses took
    half a second of the main process (holding the GIL, so the event loop with it); tuples and the
    records as JSON-ready dicts take a fraction of that."""

    rows_read: int
    good: list[tuple[int, dict[str, Any]]]  # (row, the record as the service takes it)
    errors: list[tuple[int, str, str, str]]  # (row, column, field, reason)
    blank_rows: list[int]
    file_errors: list[str]
    # The errors as the response's JSON array, sorted by row, encoded here: encoding 20,000 of them in
    # the gateway process would hold its event loop for a good part of a second.
    errors_json: bytes = b"[]"

    @classmethod
    def of(cls, report: ImportReport) -> ParsedImport:
        errors = sorted(((e.row, e.column, e.field, e.reason) for e in report.errors), key=lambda e: e[0])
        return cls(
            rows_read=report.rows_read,
            good=[(g.row, g.message.model_dump(mode="json", exclude_none=True)) for g in report.good],
            errors=errors,
            blank_rows=list(report.blank_rows),
            file_errors=list(report.file_errors),
            errors_json=json.dumps([error_view(*e) for e in errors], ensure_ascii=False).encode(),
        )


def error_view(row: int, column: str, field: str, reason: str) -> dict[str, Any]:
    return {"row": row, "column": column, "field": field, "reason": reason}


def _noop() -> None:
    return None


def _parse(path: str, kind: Kind, today: date | None, limits: ImportLimits,
           calendar: WorkingDayCalendar | None = None, submission_working_days: int | None = None) -> ParsedImport:
    return ParsedImport.of(import_file(Path(path), kind, today=today, limits=limits, calendar=calendar,
                                       submission_working_days=submission_working_days))


class ImportWorker:
    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_warm_up,
                    max_tasks_per_child=1,
                )
            return self._pool

    def start(self) -> None:
        """Start a worker now, so the first upload neither waits for one nor starts it from the event
        loop: a no-op task makes the pool spawn its process, which then exits and is replaced at once
        by one that loads the codec (`_warm_up`) before any upload comes. Once per pool: every app of
        the process shares it."""
        with self._lock:
            if self._pool is not None:
                return
        self._executor().submit(_noop)

    async def parse(self, path: Path, kind: Kind, *, today: date | None, limits: ImportLimits,
                    calendar: WorkingDayCalendar | None = None,
                    submission_working_days: int | None = None) -> ParsedImport:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), _parse, str(path), kind, today, limits,
                                              calendar, submission_working_days)
        except BrokenProcessPool:
            # The worker died (out of memory, killed): the file is refused, the next import gets a new pool.
            with self._lock:
                self._pool = None
            return ParsedImport(0, [], [], [], [f"{path.name}: the import worker stopped while reading this file (too large?)"])

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


_shared: dict[int, ImportWorker] = {}


def shared(workers: int) -> ImportWorker:
    """One pool per process (every app in it shares it: tests build many)."""
    if workers not in _shared:
        _shared[workers] = ImportWorker(workers)
    return _shared[workers]
