"""One-shot statements straight on asyncpg (PostgreSQL): the hot path without SQLAlchemy's execution layer.

Each hot write and lookup of a message is ONE statement in autocommit (see unnest_insert.py). Through
SQLAlchemy's async engine such a statement cost, measured on this project's VM, about 390 µs of the
gateway's CPU: pool checkout and its events, the greenlet hop, the compiled-cache key, the parameter
processing, the cursor adaptation; the same statement on a held asyncpg connection cost about 100 µs,
most of it the socket. At a few messages per second every message pays several of them.

``direct(engine).connect()`` gives a connection whose ``execute(statement, params)`` takes the same
SQLAlchemy statements and named parameters as ``reader(engine).connect()`` — so a store keeps one
statement for both databases — and returns the part of a result the stores read (rows by index, by
name and as ``_mapping``; ``all``, ``one``, ``scalar_one``, ``rowcount`` …). A statement is compiled
once for PostgreSQL and kept (by identity: only statements built once, at import or in a store's
constructor, may be passed); an ``IN`` of an expanding parameter becomes ``= ANY($n)`` (one array
parameter: one prepared statement for any number of values). On SQLite ``direct(engine)`` is
``reader(engine)`` itself.

Its connections are its own small pool (most recent first, no reset round trip: nothing here leaves
state on a connection — every statement is its own transaction); each keeps its prepared statements.
A connection that failed in any way but a refusal by the database is closed, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ClauseElement

from gateway.adapters.sql.compiled_once import CompiledOnce, bound_values, positional_args
from gateway.adapters.sql.engine import connector_of, is_sqlite, reader
from gateway.adapters.sql.pg_connect import WritableConnector
from gateway.adapters.sql.sqlite_inline import close_inline_reads

_DIALECT = asyncpg_dialect()
_PLACEHOLDER = re.compile(r"(NOT IN|IN) \(__\[POSTCOMPILE_(\w+)\]\)|\$(\d+)")
# Options of SQLAlchemy's asyncpg dialect that asyncpg.connect does not take.
_DIALECT_ONLY = {"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback", "async_creator_fn"}
_STATEMENTS_KEPT = 256  # prepared statements per connection


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: dict[str, Any]  # values bound into the statement itself (text(…).bindparams(x=…))


def _plan(statement: ClauseElement) -> _Plan:
    compiled = statement.compile(dialect=_DIALECT)
    if compiled.literal_execute_params:
        raise TypeError("direct_pg: a statement with literal-execute parameters cannot be prepared once")
    expanding = {bind.key for bind in compiled.post_compile_params}
    numbered = [name for name in compiled.positiontup or () if name not in expanding]  # $1, $2 … in order
    order: list[str] = []  # the parameters of the new numbering; a name used twice keeps one number

    def renumber(match: re.Match[str]) -> str:
        name = match.group(2) if match.group(3) is None else numbered[int(match.group(3)) - 1]
        if name not in order:
            order.append(name)
        number = order.index(name) + 1
        if match.group(3) is not None:
            return f"${number}"
        return f"<> ALL(${number})" if match.group(1) == "NOT IN" else f"= ANY(${number})"

    sql = _PLACEHOLDER.sub(renumber, str(compiled))
    processors = compiled._bind_processors  # noqa: SLF001  (the dialect's conversions, e.g. Boolean)
    return _Plan(sql, tuple(order), tuple(processors.get(n) for n in order), bound_values(compiled))


_PLANS: CompiledOnce[_Plan] = CompiledOnce(_plan)


def plan_of(statement: ClauseElement) -> _Plan:
    """The statement compiled for asyncpg, once (keyed by the object; the object is kept with it)."""
    return _PLANS.get(statement)


class DirectRow:
    """A row as the stores read SQLAlchemy's: by position, by attribute, unpacked, or ``_mapping``."""

    __slots__ = ("_mapping",)

    def __init__(self, record: asyncpg.Record) -> None:
        self._mapping = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, index: int) -> Any:
        return self._mapping[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping)  # an asyncpg Record iterates over its values

    def __len__(self) -> int:
        return len(self._mapping)


class DirectResult:
    """The part of SQLAlchemy's Result that the stores use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[DirectRow], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[DirectRow]:
        return iter(self._rows)

    def all(self) -> list[DirectRow]:
        return self._rows

    fetchall = all

    def first(self) -> DirectRow | None:
        return self._rows[0] if self._rows else None

    def one(self) -> DirectRow:
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def one_or_none(self) -> DirectRow | None:
        if len(self._rows) > 1:
            raise ValueError(f"expected at most one row, got {len(self._rows)}")
        return self.first()

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


def _rowcount(status: str | None) -> int:
    """``UPDATE 3`` / ``INSERT 0 3`` / ``SELECT 3`` → 3 (what SQLAlchemy's rowcount says)."""
    if not status:
        return -1
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


def _lost(exc: asyncpg.PostgresError) -> bool:
    """The server ended the session (class 08: connection exception; 57: operator intervention, as
    pg_terminate_backend or a shutdown): the connection is gone, not the statement refused."""
    return str(getattr(exc, "sqlstate", "") or "")[:2] in ("08", "57")


def _translated(exc: BaseException, sql: str) -> Exception:
    """SQLAlchemy's exception for what asyncpg raised: the stores catch IntegrityError."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(sql, None, exc)
    if isinstance(exc, asyncpg.DataError):
        return DataError(sql, None, exc)
    if isinstance(exc, asyncpg.PostgresError) and _lost(exc):
        return OperationalError(sql, None, exc)
    if isinstance(exc, asyncpg.PostgresError):
        return ProgrammingError(sql, None, exc)
    return OperationalError(sql, None, exc)


class DirectConnection:
    __slots__ = ("_conn", "_prepared", "_listeners", "broken", "generation")

    def __init__(self, conn: asyncpg.Connection, listeners: list[Callable[[str], None]], generation: int) -> None:
        self._conn = conn
        self._listeners = listeners
        self.generation = generation  # the pool's when it was opened: closed on return after a close()
        self._prepared: OrderedDict[str, Any] = OrderedDict()
        self.broken = False

    async def _statement(self, sql: str) -> Any:
        found = self._prepared.get(sql)
        if found is not None:
            self._prepared.move_to_end(sql)
            return found
        prepared = await self._conn.prepare(sql)
        self._prepared[sql] = prepared
        if len(self._prepared) > _STATEMENTS_KEPT:
            self._prepared.popitem(last=False)  # its server-side statement is closed when collected
        return prepared

    async def execute(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> DirectResult:
        if isinstance(params, Sequence) and not isinstance(params, Mapping):
            raise TypeError("direct_pg runs one statement with one set of parameters (arrays for many rows)")
        plan = plan_of(statement)
        args = positional_args(plan.names, plan.processors, plan.defaults, params or {})
        for listener in self._listeners:
            listener(plan.sql)
        try:
            prepared = await self._statement(plan.sql)
            records = await prepared.fetch(*args)
            status = prepared.get_statusmsg()
        except asyncpg.PostgresError as exc:  # refused by the database: the connection is still good …
            self.broken = _lost(exc)  # … unless the server ended the session
            raise _translated(exc, plan.sql) from exc
        except BaseException as exc:  # broken, timed out or cancelled mid-statement: never reused
            self.broken = True
            if isinstance(exc, Exception):
                raise _translated(exc, plan.sql) from exc
            raise
        return DirectResult([DirectRow(r) for r in records], _rowcount(status))


class DirectPg:
    """A small LIFO pool of asyncpg connections for one-shot statements. ``close()`` closes them as
    SQLAlchemy's ``dispose()`` closes the engine's: the pool stays usable and opens new ones."""

    def __init__(self, connect_kwargs: dict[str, Any], *, max_size: int = 10,
                 connector: WritableConnector | None = None) -> None:
        # The engine's own connect function when it has one (pg_connect.py): a formation's hosts each
        # tried with a timeout of their own, the one that answered last first.
        self._connector = connector or WritableConnector(connect_kwargs)
        self._idle: list[DirectConnection] = []
        self._slots = asyncio.Semaphore(max_size)
        self._open: set[DirectConnection] = set()
        self._generation = 0
        # Called with each statement's SQL before it runs (tests count statements with it, as with
        # SQLAlchemy's before_cursor_execute).
        self.listeners: list[Callable[[str], None]] = []

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> DirectPg:
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        if args:
            raise TypeError("direct_pg: positional connect arguments are not supported")
        return cls({k: v for k, v in kwargs.items() if k not in _DIALECT_ONLY},
                   max_size=engine.pool.size() if hasattr(engine.pool, "size") else 10, connector=connector_of(engine))

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[DirectConnection]:
        async with self._slots:
            conn = await self._checkout()
            try:
                yield conn
            finally:
                if conn.broken or conn.generation != self._generation:
                    await self._discard(conn)
                else:
                    self._idle.append(conn)

    async def _checkout(self) -> DirectConnection:
        while self._idle:
            conn = self._idle.pop()
            if not conn._conn.is_closed():  # noqa: SLF001
                return conn
            self._open.discard(conn)
        try:
            raw = await self._connector()
        except Exception as exc:
            raise _translated(exc, "connect") from exc
        conn = DirectConnection(raw, self.listeners, self._generation)
        self._open.add(conn)
        return conn

    async def _discard(self, conn: DirectConnection) -> None:
        self._open.discard(conn)
        try:
            await asyncio.wait_for(conn._conn.close(), timeout=2)  # noqa: SLF001
        except BaseException:
            conn._conn.terminate()  # noqa: SLF001

    def prepared_texts(self) -> set[str]:
        """The statements prepared on the idle connections (to see that a lookup is one text)."""
        return {sql for conn in self._idle for sql in conn._prepared}  # noqa: SLF001

    async def close(self) -> None:
        """Close the idle connections now, those in use when they come back."""
        self._generation += 1
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._discard(conn) for conn in idle), return_exceptions=True)


_DIRECT: weakref.WeakKeyDictionary[object, DirectPg] = weakref.WeakKeyDictionary()


def direct(engine: AsyncEngine) -> Any:
    """The one-shot connections of ``engine``: ``direct(engine).connect()`` (see the module)."""
    if is_sqlite(str(engine.url)):
        return reader(engine)
    found = _DIRECT.get(engine.sync_engine)
    if found is None:
        found = _DIRECT[engine.sync_engine] = DirectPg.for_engine(engine)
    return found


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's connections, its direct and inline ones included (all stay usable, as after dispose)."""
    found = _DIRECT.get(engine.sync_engine)
    if found is not None:
        await found.close()
    close_inline_reads(engine)
    await engine.dispose()
