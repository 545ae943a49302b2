"""Point reads of SQLite on the event loop's thread (gateway/adapters/sql/sqlite_inline.py): the rows
SQLAlchemy reads, what was committed before each read, and never a wait on a lock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.engine import create_engine, create_schema, write_transaction
from gateway.adapters.sql.sqlite_inline import inline_reads
from gateway.adapters.sql.tables import outbox
from tests.gateways import T0

_ROW = select(outbox.c.id, outbox.c.message_id, outbox.c.created_at, outbox.c.published_at, outbox.c.envelope,
              outbox.c.attempts).where(outbox.c.message_id == bindparam("id"))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    await create_schema(engine)
    async with write_transaction(engine) as conn:
        await conn.execute(insert(outbox), [{"message_id": "m1", "sender": "110101001", "routing_key": "x",
                                             "kind": "query", "envelope": b"\x00e", "created_at": T0,
                                             "next_attempt_at": T0, "attempts": 2, "published_at": None}])
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_an_inline_read_gives_the_values_sqlalchemy_gives(engine: AsyncEngine) -> None:
    reads = inline_reads(engine)
    assert reads is not None
    async with engine.connect() as conn:
        expected = tuple((await conn.execute(_ROW, {"id": "m1"})).one())
    rows = reads.read(_ROW, {"id": "m1"})
    assert rows is not None and len(rows) == 1
    assert tuple(rows[0][i] for i in range(len(rows[0]))) == expected
    assert rows[0].created_at == T0.replace(tzinfo=None) and rows[0].envelope == b"\x00e" and rows[0].attempts == 2
    assert reads.read(_ROW, {"id": "none"}) == []


async def test_each_inline_read_sees_what_was_committed_before_it(engine: AsyncEngine) -> None:
    reads = inline_reads(engine)
    assert reads is not None and reads.read(_ROW, {"id": "m1"})[0].published_at is None  # type: ignore[index]
    async with write_transaction(engine) as conn:
        await conn.execute(update(outbox).values(published_at=T0 + timedelta(minutes=1)))
    assert reads.read(_ROW, {"id": "m1"})[0].published_at == (T0 + timedelta(minutes=1)).replace(tzinfo=None)  # type: ignore[index]


async def test_a_locked_database_gives_none_at_once_instead_of_waiting(engine: AsyncEngine, tmp_path: Path) -> None:
    reads = inline_reads(engine)
    assert reads is not None
    await engine.dispose()  # an exclusive lock in WAL mode needs the database to itself
    reads.close()
    holder = sqlite3.connect(tmp_path / "inline.db", isolation_level=None, timeout=1)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE outbox SET attempts = 3")
        started = time.perf_counter()
        assert reads.read(_ROW, {"id": "m1"}) is None
        assert time.perf_counter() - started < 0.5
    finally:
        holder.close()
    assert reads.read(_ROW, {"id": "m1"})[0].attempts == 2  # type: ignore[index]  # rolled back, readable again


async def test_in_memory_and_postgresql_databases_have_no_inline_reads(postgres_url: str) -> None:
    memory = create_engine("sqlite+aiosqlite:///:memory:")
    postgres = create_engine(postgres_url)
    try:
        assert inline_reads(memory) is None and inline_reads(postgres) is None
    finally:
        await memory.dispose()
        await postgres.dispose()


async def test_an_in_list_is_expanded_as_sqlalchemy_expands_it(engine: AsyncEngine) -> None:
    many = select(outbox.c.message_id, outbox.c.created_at).where(
        outbox.c.message_id.in_(bindparam("ids", expanding=True)), outbox.c.kind == bindparam("kind"))
    reads = inline_reads(engine)
    assert reads is not None
    for ids in (["m1"], ["none", "m1"], ["a", "b", "c", "m1"]):
        rows = reads.read(many, {"ids": ids, "kind": "query"})
        assert rows is not None and [(r.message_id, r.created_at) for r in rows] == [("m1", T0.replace(tzinfo=None))]
    assert reads.read(many, {"ids": ["m1"], "kind": "notification"}) == []
