"""Engine creation: SQLite (embedded default) and PostgreSQL (production) behind one function."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.adapters.sql import access_tables, security_tables, workflow_tables  # noqa: F401  (register their tables)
from gateway.adapters.sql import sqlite_driver
from gateway.adapters.sql.pg_connect import WritableConnector
from gateway.private_paths import private_file


@functools.lru_cache(maxsize=64)  # asked on every statement of the hot path; parsing a URL is not free
def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _in_memory(url: str) -> bool:
    """SQLAlchemy's own test for giving an SQLite database a StaticPool (one shared connection)."""
    parsed = make_url(url)
    return not parsed.database or parsed.database == ":memory:" or parsed.query.get("mode") == "memory"


def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            # Created 0600 in a 0700 folder before SQLite opens it: SQLite gives its -wal and -shm
            # files the database file's mode.
            private_file(Path(database))
        # A pool as large as the requests served at once: beyond it SQLAlchemy opens and closes an
        # overflow connection per use (a thread, a file open and three PRAGMAs each time), which was
        # 0.7 new connections per answer in the demo's 64 clerks.
        # An in-memory database lives in one connection (SQLAlchemy gives it a StaticPool, which
        # takes no size).
        sizing = {} if _in_memory(url) else {"pool_size": 64, "max_overflow": 64, "pool_use_lifo": True}
        engine = create_async_engine(url, connect_args={"timeout": 30}, module=sqlite_driver.dbapi(),
                                     **sizing)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets readers (the HTTP API) run while the consumer writes.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # No pre-ping: it costs a round trip on every checkout, on the hot path; stale connections are
    # recycled instead, and a failed transaction is retried by the caller (outbox, redelivery).
    # LIFO: the connection used last is used next. Each connection keeps its own prepared statements
    # (and the server a backend for it); handed out in turn, every one of the pool's connections
    # prepared every statement, and a gateway's memory grew for an hour as they filled. Most recent
    # first, a quiet gateway works on the few connections it needs and their statements stay prepared.
    # A formation's URL names several hosts: each is tried with a timeout of its own (pg_connect.py).
    connector = WritableConnector.for_url(url)
    failover = {"async_creator": connector} if connector.several_hosts else {}
    engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800, pool_use_lifo=True, **failover)
    _CONNECTORS[engine.sync_engine] = connector
    return engine


_CONNECTORS: weakref.WeakKeyDictionary[object, WritableConnector] = weakref.WeakKeyDictionary()


def connector_of(engine: AsyncEngine) -> WritableConnector | None:
    """The connect function of a PostgreSQL engine made by create_engine, for every other pool on its
    database (direct_pg): one function, so that all of them try first the host that answered last."""
    return _CONNECTORS.get(engine.sync_engine)


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema: create it when empty, else migrate it (see migrate.py)."""
    from gateway.adapters.sql.migrate import migrate  # Alembic is imported only by what opens a database

    await migrate(engine)


_READERS: weakref.WeakKeyDictionary[object, AsyncEngine] = weakref.WeakKeyDictionary()


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The engine for reads that need no transaction of their own: ``reader(engine).connect()``.

    On PostgreSQL a plain ``engine.connect()`` wraps every read in BEGIN … ROLLBACK: three round trips
    for one SELECT, on every lookup of the hot path. Read in autocommit mode instead: each statement
    sees the data committed when it starts — exactly what a READ COMMITTED transaction gives each of
    its statements, so nothing a one-shot read can see changes. (Server-side cursors, ``stream``, need
    a transaction: use the engine itself for those.) SQLite reads hold no transaction either way (see
    sqlite_driver.py), so its engine is returned as it is."""
    if is_sqlite(str(engine.url)):
        return engine
    found = _READERS.get(engine.sync_engine)
    if found is None:
        found = _READERS[engine.sync_engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


_WRITE_LOCKS: weakref.WeakKeyDictionary[object, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One writing transaction. On SQLite, one at a time per engine, for every store sharing it:
    SQLite has a single writer, and queueing here beats "database is locked" retries.

    (Measured: letting consecutive transactions share one commit through SAVEPOINTs cost more than it
    saved — a commit in WAL mode with synchronous=NORMAL writes no fsync, a SAVEPOINT pair through
    SQLAlchemy costs more than BEGIN and COMMIT.)"""
    if not is_sqlite(str(engine.url)):
        async with engine.begin() as conn:
            yield conn
        return
    async with write_lock(engine), engine.begin() as conn:
        yield conn


def write_lock(engine: AsyncEngine) -> asyncio.Lock:
    """The lock of SQLite's single writer, shared by every store on ``engine`` (see write_transaction)."""
    return _WRITE_LOCKS.setdefault(engine.sync_engine, asyncio.Lock())
