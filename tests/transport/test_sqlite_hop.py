"""A SQLite transaction's statements in one hop to its connection's thread
(gateway/adapters/sql/sqlite_hop.py): stored exactly as SQLAlchemy stores them, part of SQLAlchemy's
transaction (committed and rolled back with it), refusals as SQLAlchemy's exceptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.engine import create_engine, create_schema, write_transaction
from gateway.adapters.sql.sqlite_hop import HopStatements, one_hop
from gateway.adapters.sql.tables import outbox
from tests.gateways import T0
from tests.statements import statements_run

_INSERT = insert(outbox)
_BUMP = (update(outbox).where(outbox.c.message_id == bindparam("b_id"), outbox.c.published_at.is_(None))
         .values(attempts=outbox.c.attempts + 1, next_attempt_at=bindparam("b_at")))
_SENDER = select(outbox.c.sender).where(outbox.c.message_id == bindparam("b_id"))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'hop.db'}")
    await create_schema(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def row(i: int, **changes: object) -> dict[str, object]:
    values: dict[str, object] = {"message_id": f"m{i}", "sender": "110101001", "routing_key": "110101002",
                                 "kind": "query", "envelope": b"e%d" % i, "created_at": T0,
                                 "next_attempt_at": T0 + timedelta(seconds=i)}
    values.update(changes)
    return values


async def stored(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(outbox.c.message_id, outbox.c.attempts, outbox.c.next_attempt_at,
                                           outbox.c.envelope).order_by(outbox.c.id))
        return [tuple(r) for r in result]


async def test_rows_written_in_a_hop_read_back_as_sqlalchemy_writes_them(engine: AsyncEngine) -> None:
    """Datetimes go through the dialect's own conversion and a column's scalar default (attempts = 0)
    is applied, so a row written in a hop reads back exactly like one written through SQLAlchemy."""
    async with write_transaction(engine) as conn:
        await conn.execute(_INSERT, [row(0)])
    async with write_transaction(engine) as conn:
        assert await one_hop(conn, lambda run: run.executemany(_INSERT, [row(1), row(2)])) == 2
    first, *hopped = await stored(engine)
    assert hopped == [("m1", 0, T0.replace(tzinfo=None) + timedelta(seconds=1), b"e1"),
                      ("m2", 0, T0.replace(tzinfo=None) + timedelta(seconds=2), b"e2")]
    assert first == ("m0", 0, T0.replace(tzinfo=None), b"e0")


async def test_a_conditional_write_gives_its_own_row_count_and_reads_see_the_transaction(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(_INSERT, [row(0, published_at=None), row(1, published_at=T0)])

    def work(run: HopStatements) -> tuple[int, int, object]:
        moved = run.execute(_BUMP, {"b_id": "m0", "b_at": T0 + timedelta(hours=1)}).rowcount
        published = run.execute(_BUMP, {"b_id": "m1", "b_at": T0}).rowcount  # already published: no match
        return moved, published, run.execute(_SENDER, {"b_id": "m0"}).scalar()

    async with write_transaction(engine) as conn:
        assert await one_hop(conn, work) == (1, 0, "110101001")
    assert (await stored(engine))[0][1:3] == (1, T0.replace(tzinfo=None) + timedelta(hours=1))


async def test_a_failure_in_the_hop_rolls_back_the_whole_transaction_with_sqlalchemys_exception(engine: AsyncEngine) -> None:
    """A unique violation is SQLAlchemy's IntegrityError (the stores catch those), and what the
    transaction wrote before it — through SQLAlchemy and in the hop — is rolled back."""
    async with write_transaction(engine) as conn:
        await conn.execute(_INSERT, [row(0)])
    with pytest.raises(IntegrityError):
        async with write_transaction(engine) as conn:
            await conn.execute(_INSERT, [row(1)])
            await one_hop(conn, lambda run: run.executemany(_INSERT, [row(2), row(0)]))
    assert [r[0] for r in await stored(engine)] == ["m0"]
    async with write_transaction(engine) as conn:  # the connection is usable again
        await one_hop(conn, lambda run: run.executemany(_INSERT, [row(3)]))
    assert [r[0] for r in await stored(engine)] == ["m0", "m3"]


async def test_statements_of_a_hop_are_seen_by_the_statement_listeners(engine: AsyncEngine) -> None:
    seen: list[str] = []
    with statements_run(engine, seen.append):
        async with write_transaction(engine) as conn:
            await one_hop(conn, lambda run: (run.executemany(_INSERT, [row(0), row(1)]),
                                             run.execute(_SENDER, {"b_id": "m1"})))
    assert [s.split()[0] for s in seen] == ["INSERT", "SELECT"]


async def test_an_expanding_parameter_is_refused_rather_than_compiled_for_one_length(engine: AsyncEngine) -> None:
    many = select(func.count()).select_from(outbox).where(outbox.c.message_id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(TypeError, match="expanding"):
        async with write_transaction(engine) as conn:
            await one_hop(conn, lambda run: run.execute(many, {"ids": ["m0"]}))
