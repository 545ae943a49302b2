"""Seeing the statements a store runs, whichever way it runs them: SQLAlchemy's execution, straight on
asyncpg for the hot path on PostgreSQL (gateway/adapters/sql/direct_pg.py), or in one hop to an SQLite
connection's thread (gateway/adapters/sql/sqlite_hop.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.direct_pg import direct
from gateway.adapters.sql.engine import is_sqlite
from gateway.adapters.sql.sqlite_hop import listeners_of


@contextlib.contextmanager
def statements_run(engine: AsyncEngine, seen: Callable[[str], None]) -> Iterator[None]:
    """``seen(sql)`` before each statement run on ``engine`` meanwhile."""

    def before(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    listeners = listeners_of(engine.sync_engine) if is_sqlite(str(engine.url)) else direct(engine).listeners
    listeners.append(seen)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        listeners.remove(seen)
