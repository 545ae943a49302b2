"""Import files are parsed in a worker process, never on the event loop.

Reading and validating 20,000 rows takes seconds of CPU; on the event loop that stalls every request,
consumer and the outbox relay of the gateway, and a hostile workbook could also leave its memory behind.
So the parse runs in a separate process (spawned, not forked: the gateway process holds threads and
broker connections), and each process does one import and exits (`max_tasks_per_child=1`), giving back
everything the parse took. The replacement starts at once and loads the codec before the next upload
comes, so an import does not pay for the start-up.

The worker runs under a memory limit (GATEWAY_IMPORT_WORKER_MEMORY_MB, `RLIMIT_AS` set in the worker
itself): a file that gets past the checks of `xlsx_guard` and still needs more fails in the worker —
a MemoryError, or the reader aborting the process — and is refused with a reason; the pool is replaced
and the next import is served. The pool starts and stops with the server's lifespan (`running`), so a
stopped `gateway serve` leaves no worker behind.

The codec's overrides (GATEWAY_CODEC_OVERRIDES_DIR) reach the worker through the environment, which it
inherits when it starts.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from gateway.codec.bulk_import import ImportReport, Kind, import_file
from gateway.exchange.errors import ExchangeError
from gateway.codec.xlsx_guard import ImportLimits
from gateway.workflow.calendar import WorkingDayCalendar


MIB = 1024 * 1024
WORKER_STOPPED = ("the import worker stopped while reading this file (most often: it needed more memory than "
                  "GATEWAY_IMPORT_WORKER_MEMORY_MB allows)")
OUT_OF_MEMORY = "reading this file needs more memory than the import worker may use (GATEWAY_IMPORT_WORKER_MEMORY_MB)"


class WorkerUnavailable(ExchangeError):
    """The import worker cannot start at all (not the file's fault): 503, the clerk tries again later."""

    status = 503


def _warm_up(memory_bytes: int = 0) -> None:
    # The limit first, so it covers all the worker holds; then, before the first task, the code tables
    # and the 41,352 divisions.
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
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
    try:
        return ParsedImport.of(import_file(Path(path), kind, today=today, limits=limits, calendar=calendar,
                                           submission_working_days=submission_working_days))
    except MemoryError:
        # Python's own allocations hit the limit: the worker ends after this task anyway.
        return ParsedImport(0, [], [], [], [f"{Path(path).name}: {OUT_OF_MEMORY}"])


class ImportWorker:
    def __init__(self, workers: int = 1, memory_mb: int = 0) -> None:
        self.workers = workers
        self.memory_bytes = memory_mb * MIB
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_warm_up,
                    initargs=(self.memory_bytes,),
                    max_tasks_per_child=1,
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        # Only the pool that broke: a concurrent import may have made its replacement already.
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

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
        """The file parsed in a worker. A worker that dies takes every import waiting in its pool with it,
        so each is tried once more in a new pool: the file that killed it dies again and is refused
        (422), the others go through; when even a no-op cannot run, the worker cannot start (503)."""
        loop = asyncio.get_running_loop()
        for _attempt in range(2):
            pool = self._executor()
            try:
                return await loop.run_in_executor(pool, _parse, str(path), kind, today, limits,
                                                  calendar, submission_working_days)
            except BrokenProcessPool:
                self._discard(pool)
        pool = self._executor()
        try:
            await loop.run_in_executor(pool, _noop)
        except BrokenProcessPool:
            self._discard(pool)
            raise WorkerUnavailable("the import worker cannot start: try again later, or tell the operator") from None
        return ParsedImport(0, [], [], [], [f"{path.name}: {WORKER_STOPPED}"])

    def close(self) -> None:
        """Stop the workers and wait for them to end (an import under way is finished first)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The server's lifespan: workers started when it starts, stopped (and waited for) when it stops."""
        self.start()
        try:
            yield
        finally:
            # On the loop itself, not in a thread (none can start while the interpreter exits): by now the
            # server has finished every request, so no import is under way and the workers end at once.
            self.close()


_shared: dict[tuple[int, int], ImportWorker] = {}


def shared(workers: int, memory_mb: int = 0) -> ImportWorker:
    """One pool per process (every app in it shares it: tests build many)."""
    key = (workers, memory_mb)
    if key not in _shared:
        _shared[key] = ImportWorker(workers, memory_mb)
    return _shared[key]
