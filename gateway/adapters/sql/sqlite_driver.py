"""The embedded database's driver: SQLAlchemy's aiosqlite adapter, one thread hop per statement.

aiosqlite runs every sqlite3 call in its connection's own thread. SQLAlchemy's adapter makes four such
calls per statement (open a cursor, execute, fetch, close), and each is a hop between the event loop and
that thread (a queue put, a thread wake-up, a self-pipe write, a future resolved): ≈ 230 µs of CPU for
a one-row SELECT that takes SQLite itself 5 µs, and 4 hops × every statement of the gateway was most of
what the embedded default spent per message. Here a statement is one function run in the thread
(execute, fetch every row, read the description and counts, close the cursor): one hop. A rollback of a
connection that holds no transaction (after every read) is skipped without a hop at all.

Everything else is SQLAlchemy's own aiosqlite dialect, untouched; ``engine.create_engine`` passes this
module as its DBAPI (``module=``). It leans on two things outside their public API, both pinned in
pyproject.toml and covered by every SQLite test: aiosqlite's ``Connection._execute(fn, *args)`` (run a
function in the connection's thread) and the cursor adapter's attributes in SQLAlchemy's
``connectors/asyncio.py``.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_


def _run_statement(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> tuple[Any, list[Any], int, int | None]:
    """In the connection's thread: the whole statement, and what the adapter will be asked about it."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: Any) -> None:  # no cursor opened here: it lives inside one hop
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:  # type: ignore[override]
        return self._lastrowid  # type: ignore[return-value]

    async def _async_soft_close(self) -> None:
        return None  # the rows are already here and the sqlite3 cursor is closed

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._one_hop(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._one_hop(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _one_hop(self, operation: Any, parameters: Any, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            self._description, rows, self._rowcount, self._lastrowid = await connection._execute(
                _run_statement, connection._conn, operation, parameters, many)
        self._rows = collections.deque(rows)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor  # type: ignore[assignment]

    def rollback(self) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        # Reading in_transaction is a flag of the sqlite3 handle, safe from this thread; after a read
        # there is nothing to roll back, and no reason to wake the connection's thread for it.
        if connection._connection is not None and not connection._connection.in_transaction:
            return
        super().rollback()


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        creator_fn = kw.pop("async_creator_fn", None)
        connection = creator_fn(*arg, **kw) if creator_fn else self.aiosqlite.connect(*arg, **kw)
        if not creator_fn:
            connection._thread.daemon = True  # as SQLAlchemy's adapter does: never hold up the interpreter's exit
        return OneHopConnection(self, await_(connection))


def dbapi() -> OneHopDbapi:
    return OneHopDbapi(aiosqlite, sqlite3)
