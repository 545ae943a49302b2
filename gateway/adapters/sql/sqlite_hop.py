"""A SQLite writing transaction's statements in ONE hop to its connection's thread.

Each statement run through SQLAlchemy on the embedded default is a hop between the event loop and the
aiosqlite connection's thread (sqlite_driver.py) plus SQLAlchemy's execution layer: ≈ 145 µs of the
gateway's CPU for a one-row statement whose SQLite part takes a few. A transaction that writes per item
— a claim per answer, a ledger move and a case write per tracker reply — paid that per item.

``one_hop(conn, work)`` runs ``work(statements)`` in the thread of ``conn`` (an SQLAlchemy connection
inside ``write_transaction``), where ``statements.execute(statement, params)`` runs a statement on the
raw sqlite3 connection: the same SQLAlchemy statements, compiled once for SQLite exactly as
SQLAlchemy's own execute compiles them (the parameters' keys as column keys), their parameters put
through the dialect's own conversions (a datetime becomes SQLAlchemy's stored text). The statements
join the transaction SQLAlchemy began, and commit or roll back with it. ``write_in_one_hop(engine,
work)`` takes the single writer's lock and runs ``work`` and the commit in the same hop (a commit through
SQLAlchemy is a hop of its own). A result is the row count and the raw rows: no result conversions, so
only statements whose returned columns need none (text, integers, bytes) should read rows here.

``work`` runs in another thread: it must only compute from its arguments and run statements, never
touch the event loop or objects shared with it.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite_dialect
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ClauseElement

from gateway.adapters.sql.compiled_once import CompiledOnce, bound_values, positional_args
from gateway.adapters.sql.engine import write_lock

T = TypeVar("T")
SQLITE_DIALECT = aiosqlite_dialect()  # the dialect of engine.create_engine's SQLite engines


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # the ? placeholders' parameters, in order
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: dict[str, Any]  # values bound in the statement itself, and columns' scalar defaults


def _plan(statement: ClauseElement, keys: tuple[str, ...] = ()) -> _Plan:
    compiled = statement.compile(dialect=SQLITE_DIALECT, column_keys=list(keys))
    if compiled.post_compile_params or compiled.literal_execute_params:
        raise TypeError("sqlite_hop: expanding or literal-execute parameters are not supported")
    defaults = bound_values(compiled)
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if default is None or not default.is_scalar:
            raise TypeError(f"sqlite_hop: {column.key} has a default computed in Python, not supported")
        defaults[column.key] = default.arg
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors  # noqa: SLF001  (the dialect's conversions: datetimes to text)
    return _Plan(str(compiled), names, tuple(processors.get(n) for n in names), defaults)


_PLANS: CompiledOnce[_Plan] = CompiledOnce(_plan)
_LISTENERS: weakref.WeakKeyDictionary[object, list[Callable[[str], None]]] = weakref.WeakKeyDictionary()


def listeners_of(sync_engine: object) -> list[Callable[[str], None]]:
    """Called with each statement's SQL before it runs in a hop of this engine or inline (sqlite_inline.py);
    tests count statements with it."""
    return _LISTENERS.setdefault(sync_engine, [])


@dataclass(frozen=True, slots=True)
class HopResult:
    rowcount: int
    rows: list[tuple[Any, ...]]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


def _translated(exc: sqlite3.Error, sql: str) -> Exception:
    """SQLAlchemy's exception for sqlite3's, as its own execute would raise (the stores catch those)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(sql, None, exc)
    if isinstance(exc, sqlite3.DataError):
        return DataError(sql, None, exc)
    if isinstance(exc, sqlite3.OperationalError):
        return OperationalError(sql, None, exc)
    return ProgrammingError(sql, None, exc)


class HopStatements:
    """In the connection's thread: statements run on the raw sqlite3 connection."""

    __slots__ = ("_raw", "_listeners")

    def __init__(self, raw: sqlite3.Connection, listeners: list[Callable[[str], None]]) -> None:
        self._raw = raw
        self._listeners = listeners

    @staticmethod
    def _args(plan: _Plan, params: Mapping[str, Any]) -> list[Any]:
        return positional_args(plan.names, plan.processors, plan.defaults, params)

    def execute(self, statement: ClauseElement, params: Mapping[str, Any]) -> HopResult:
        plan = _PLANS.get(statement, tuple(sorted(params)))
        return self._run(plan, [self._args(plan, params)], many=False)

    def executemany(self, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> int:
        """One statement for each of ``rows`` (all with the keys of the first); the rows changed."""
        if not rows:
            return 0
        plan = _PLANS.get(statement, tuple(sorted(rows[0])))
        return self._run(plan, [self._args(plan, row) for row in rows], many=True).rowcount

    def committed(self, work: Callable[[HopStatements], T]) -> T:
        """``work``, then the commit (or the rollback, if it raised)."""
        try:
            result = work(self)
        except BaseException:
            if self._raw.in_transaction:
                self._raw.rollback()
            raise
        try:
            if self._raw.in_transaction:
                self._raw.commit()
        except sqlite3.Error as exc:
            raise _translated(exc, "COMMIT") from exc
        return result

    def _run(self, plan: _Plan, args: list[list[Any]], *, many: bool) -> HopResult:
        for listener in self._listeners:
            listener(plan.sql)
        cursor = self._raw.cursor()
        try:
            if many:
                cursor.executemany(plan.sql, args)
            else:
                cursor.execute(plan.sql, args[0])
            rows = cursor.fetchall() if cursor.description else []
            return HopResult(cursor.rowcount, rows)
        except sqlite3.Error as exc:
            raise _translated(exc, plan.sql) from exc
        finally:
            cursor.close()


async def one_hop(conn: AsyncConnection, work: Callable[[HopStatements], T]) -> T:
    """``work`` run in the thread of ``conn``'s SQLite connection, inside its transaction (see the
    module). SQLAlchemy's own statements on ``conn`` wait meanwhile, as they wait for each other."""
    fairy = await conn.get_raw_connection()
    adapted = fairy.dbapi_connection  # sqlite_driver.OneHopConnection
    aio = adapted._connection  # type: ignore[union-attr]  # noqa: SLF001  (the aiosqlite connection)
    listeners = listeners_of(conn.engine.sync_engine)
    async with adapted._execute_mutex:  # type: ignore[union-attr]  # noqa: SLF001
        return await aio._execute(lambda: work(HopStatements(aio._conn, listeners)))  # noqa: SLF001


async def committed_in_one_hop(engine: AsyncEngine, work: Callable[[HopStatements], T]) -> T:
    """A whole writing transaction — ``work``'s statements and the commit — in one hop, where
    ``write_transaction`` takes one hop per statement and one for the commit. The caller holds the
    engine's ``write_lock``."""
    async with engine.connect() as conn:
        return await one_hop(conn, lambda run: run.committed(work))


async def write_in_one_hop(engine: AsyncEngine, work: Callable[[HopStatements], T]) -> T:
    """``committed_in_one_hop`` under the engine's write lock (SQLite's single writer)."""
    async with write_lock(engine):
        return await committed_in_one_hop(engine, work)
