"""Point reads of an SQLite database on the event loop's own thread.

A statement through aiosqlite runs in the connection's thread, and under load that thread waits for the
GIL to build its rows: measured in `gateway demo`, a credential lookup by its unique token (the read
every authenticated request makes) cost 150 µs of the thread's CPU and 6 ms of wall time at the median
(115 ms at the 99th percentile), for a lookup SQLite itself does in a few microseconds. Read on the
loop's thread, it costs those microseconds and waits for nothing.

Only for reads by an index of a few rows (the caller's promise; an IN list is expanded as SQLAlchemy
expands it): a read never waits for a
writer in WAL mode, and this connection has no busy timeout, so on the rare "database is locked" (a
WAL recovery) ``read`` returns None at once and the caller reads through its engine instead. The
connection is query-only and in autocommit: each read sees what was committed when it started, so a
revoked credential is refused on the next request, as through the engine. In-memory databases (one
connection, SQLAlchemy's StaticPool) and PostgreSQL have no inline reads (``inline_reads`` is None).
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.compiled_once import CompiledOnce, bound_values, positional_args
from gateway.adapters.sql.sqlite_hop import SQLITE_DIALECT, listeners_of



@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: dict[str, Any]
    columns: dict[str, int]
    results: tuple[Callable[[Any], Any] | None, ...]
    expanding: Any  # the compiled statement when it has IN lists to expand per call, else None


def _plan(statement: Select[Any]) -> _Plan:
    compiled = statement.compile(dialect=SQLITE_DIALECT)
    if compiled.literal_execute_params:
        raise TypeError("sqlite_inline: literal-execute parameters are not supported")
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors  # noqa: SLF001  (the dialect's conversions, as SQLAlchemy applies them)
    defaults = bound_values(compiled)
    selected = list(statement.selected_columns)
    return _Plan(str(compiled), names, tuple(processors.get(n) for n in names), defaults,
                 {column.key: i for i, column in enumerate(selected)},
                 tuple(column.type._cached_result_processor(SQLITE_DIALECT, None) for column in selected),  # noqa: SLF001
                 compiled if compiled.post_compile_params else None)


def _expanded(plan: _Plan, given: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The text and arguments of a statement whose IN lists take one placeholder per value, as
    SQLAlchemy's own execution expands them."""
    compiled = plan.expanding
    state = compiled._process_parameters_for_postcompile(compiled.construct_params(dict(given)))  # noqa: SLF001
    processors = state.processors or compiled._bind_processors  # noqa: SLF001
    values = state.parameters
    return state.statement, [values[n] if (p := processors.get(n)) is None else p(values[n]) for n in state.positiontup]


_PLANS: CompiledOnce[_Plan] = CompiledOnce(_plan)


class InlineRow:
    """A row read by position or by column name (``row.username``), its values converted as
    SQLAlchemy converts them (an SQLite datetime text becomes a datetime)."""

    __slots__ = ("_values", "_columns")

    def __init__(self, values: tuple[Any, ...], columns: dict[str, int]) -> None:
        self._values = values
        self._columns = columns

    def __getitem__(self, index: int) -> Any:
        return self._values[index]

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[self._columns[name]]
        except KeyError:
            raise AttributeError(name) from None

    def __len__(self) -> int:
        return len(self._values)

    @property
    def _mapping(self) -> dict[str, Any]:
        return {name: self._values[i] for name, i in self._columns.items()}


class InlineReads:
    def __init__(self, path: str, listeners: list[Callable[[str], None]]) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._listeners = listeners  # told each statement's SQL (tests count statements with it)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # timeout=0: never wait on a lock on the loop's thread (see the module).
            conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            self._conn = conn
        return self._conn

    def read(self, statement: Select[Any], params: Mapping[str, Any]) -> list[InlineRow] | None:
        """The rows, or None when the database is busy (read through the engine then)."""
        plan = _PLANS.get(statement)
        if plan.expanding is not None:
            sql, args = _expanded(plan, {**plan.defaults, **params})
        else:
            sql, args = plan.sql, positional_args(plan.names, plan.processors, plan.defaults, params)
        for listener in self._listeners:
            listener(sql)
        try:
            rows = self._connection().execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise
        results = plan.results
        return [InlineRow(tuple(v if p is None else p(v) for v, p in zip(row, results)), plan.columns) for row in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_INLINE: weakref.WeakKeyDictionary[object, InlineReads] = weakref.WeakKeyDictionary()


def inline_reads(engine: AsyncEngine) -> InlineReads | None:
    """The inline reads of an SQLite database in a file; None for any other engine (see the module)."""
    found = _INLINE.get(engine.sync_engine)
    if found is not None:
        return found
    url = make_url(str(engine.url))
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:") \
            or url.query.get("mode") == "memory":
        return None
    found = _INLINE[engine.sync_engine] = InlineReads(database, listeners_of(engine.sync_engine))
    return found


async def read_rows(inline: InlineReads | None, connectable: Any, statement: Select[Any],
                    params: Mapping[str, Any]) -> list[Any]:
    """The rows, read inline when ``inline`` can (SQLite, not locked), else through
    ``connectable.connect()`` (an engine, or direct_pg's pool)."""
    rows = inline.read(statement, params) if inline is not None else None
    if rows is None:
        async with connectable.connect() as conn:
            rows = list((await conn.execute(statement, params)).all())
    return rows


def close_inline_reads(engine: AsyncEngine) -> None:
    found = _INLINE.pop(engine.sync_engine, None)
    if found is not None:
        found.close()
