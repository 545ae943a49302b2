"""The hot path's one-shot statements straight on asyncpg (gateway/adapters/sql/direct_pg.py): the same
statements and results as through SQLAlchemy, refusals as SQLAlchemy's exceptions, and a connection
that broke never handed out again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.direct_pg import DirectPg, direct, dispose
from gateway.adapters.sql.engine import create_engine, create_schema, reader
from gateway.adapters.sql.tables import outbox
from tests.gateways import T0

pytestmark = pytest.mark.database

_INSERT = text("INSERT INTO outbox (message_id, sender, routing_key, kind, envelope, created_at, attempts, "
               "next_attempt_at) SELECT * FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:senders AS VARCHAR[]), "
               "CAST(:senders AS VARCHAR[]), CAST(:kinds AS VARCHAR[]), CAST(:envelopes AS BYTEA[]), "
               "CAST(:ats AS TIMESTAMPTZ[]), CAST(:zeros AS INTEGER[]), CAST(:ats AS TIMESTAMPTZ[]))")
_OF_SENDERS = select(outbox.c.message_id, outbox.c.sender, outbox.c.envelope).where(
    outbox.c.sender.in_(bindparam("senders", expanding=True)),
    outbox.c.message_id.not_in(bindparam("excluded", expanding=True)),
    outbox.c.attempts == bindparam("attempts"),
).order_by(outbox.c.message_id)
_RETRY = update(outbox).where(outbox.c.sender == bindparam("b_sender")).values(attempts=outbox.c.attempts + 1)
_BOUND = text("SELECT :a AS a, :b AS b").bindparams(b="bound")


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    await create_schema(engine)
    try:
        yield engine
    finally:
        await dispose(engine)


async def fill(engine: AsyncEngine, n: int) -> None:
    ids = [f"m{i}" for i in range(n)]
    async with direct(engine).connect() as conn:
        written = await conn.execute(_INSERT, {
            "ids": ids, "senders": ["110101001" if i % 2 else "110101002" for i in range(n)],
            "kinds": ["query"] * n, "envelopes": [i.encode() for i in ids], "ats": [T0 + timedelta(seconds=i) for i in range(n)],
            "zeros": [0] * n})
    assert written.rowcount == n


async def test_a_statement_gives_the_rows_sqlalchemy_gives(engine: AsyncEngine) -> None:
    """An expanding IN becomes one array (= ANY, <> ALL for NOT IN); rows are read by position, by
    name, unpacked and as a mapping, exactly as SQLAlchemy's."""
    await fill(engine, 6)
    params = {"senders": ["110101001"], "excluded": ["m3"], "attempts": 0}
    async with reader(engine).connect() as conn:
        expected = (await conn.execute(_OF_SENDERS, params)).all()
    async with direct(engine).connect() as conn:
        rows = (await conn.execute(_OF_SENDERS, params)).all()
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected] == [("m1", "110101001", b"m1"), ("m5", "110101001", b"m5")]
    first = rows[0]
    assert (first[0], first.sender, first._mapping["envelope"]) == ("m1", "110101001", b"m1")
    message_id, _, _ = first
    assert message_id == "m1"
    with pytest.raises(AttributeError):
        first.no_such_column  # noqa: B018


async def test_rowcount_scalars_and_values_bound_into_a_statement(engine: AsyncEngine) -> None:
    await fill(engine, 4)
    async with direct(engine).connect() as conn:
        assert (await conn.execute(_RETRY, {"b_sender": "110101002"})).rowcount == 2
        assert (await conn.execute(_RETRY, {"b_sender": "nobody"})).rowcount == 0
        assert (await conn.execute(select(outbox.c.attempts).order_by(outbox.c.id))).scalars() == [1, 0, 1, 0]
        assert tuple((await conn.execute(_BOUND, {"a": "given"})).one()) == ("given", "bound")


async def test_a_unique_violation_is_sqlalchemys_integrity_error_and_the_connection_stays(engine: AsyncEngine) -> None:
    await fill(engine, 2)
    pool = direct(engine)
    with pytest.raises(IntegrityError):
        async with pool.connect() as conn:
            await conn.execute(_INSERT, {"ids": ["m0"], "senders": ["110101002"], "kinds": ["query"],
                                         "envelopes": [b"again"], "ats": [T0], "zeros": [0]})
    with pytest.raises(ProgrammingError):
        async with pool.connect() as conn:
            await conn.execute(text("SELECT no_such_column FROM outbox"))
    async with pool.connect() as again:
        assert again is conn  # refusals by the database leave the connection good
        assert (await again.execute(select(outbox.c.id))).rowcount == 2


async def test_a_connection_that_broke_is_never_handed_out_again(engine: AsyncEngine) -> None:
    pool = direct(engine)
    async with pool.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with reader(engine).connect() as admin:  # returns once the backend has exited
        await admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    # Either the pool has already seen the connection close and hands out a new one, or the statement
    # meets the dead connection and fails; never does a statement run on it.
    try:
        async with pool.connect() as first:
            assert (await first.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    except OperationalError:
        pass
    async with pool.connect() as fresh:  # and after that failure, the next gets a new one
        assert (await fresh.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid


async def test_a_statement_cancelled_midway_leaves_no_connection_behind(engine: AsyncEngine) -> None:
    pool = direct(engine)

    async def slow() -> None:
        async with pool.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(5)"))

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any("pg_sleep" in sql for sql in pool.prepared_texts())  # its connection was closed
    async with pool.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_many_rows_at_once_take_the_statement_of_one(engine: AsyncEngine) -> None:
    """One array per column: one SQL text whatever the number of rows, prepared once per connection."""
    pool = direct(engine)
    await fill(engine, 3)
    await fill_more(engine, 50)
    assert sum("INSERT INTO outbox" in sql for sql in pool.prepared_texts()) == 1


async def fill_more(engine: AsyncEngine, n: int) -> None:
    ids = [f"more{i}" for i in range(n)]
    async with direct(engine).connect() as conn:
        await conn.execute(_INSERT, {"ids": ids, "senders": ["110101001"] * n, "kinds": ["query"] * n,
                                     "envelopes": [b"x"] * n, "ats": [T0] * n, "zeros": [0] * n})


async def test_a_disposed_engine_closes_its_direct_connections(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    pool = direct(engine)
    assert isinstance(pool, DirectPg)
    async with pool.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert len(pool.prepared_texts()) == 1
    async with pool.connect() as in_use:
        await dispose(engine)  # while a statement's connection is out
        assert pool.prepared_texts() == set()  # the idle ones are closed
    assert pool.prepared_texts() == set()  # and the one in use when it came back
    assert in_use._conn.is_closed()  # noqa: SLF001
    async with direct(engine).connect() as conn:  # usable again, as an engine after dispose
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    await dispose(engine)


async def test_on_sqlite_direct_is_the_reader(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    try:
        assert direct(engine) is reader(engine)
    finally:
        await dispose(engine)


def test_a_session_ended_by_the_server_is_a_lost_connection_not_a_refused_statement() -> None:
    """pg_terminate_backend, a shutdown or a broken link (SQLSTATE classes 57 and 08) reach the client
    as a PostgreSQL error: SQLAlchemy's OperationalError, like any lost connection; a refusal of the
    statement itself stays a ProgrammingError."""
    from asyncpg.exceptions import AdminShutdownError, ConnectionFailureError, UndefinedTableError

    from gateway.adapters.sql.direct_pg import _translated

    assert isinstance(_translated(AdminShutdownError("terminating connection"), "SELECT 1"), OperationalError)
    assert isinstance(_translated(ConnectionFailureError("gone"), "SELECT 1"), OperationalError)
    assert isinstance(_translated(UndefinedTableError("no such table"), "SELECT 1"), ProgrammingError)
