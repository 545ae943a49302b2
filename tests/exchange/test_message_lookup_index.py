"""A node's message found by its id alone (answering, feedback and receipt checks) uses an index on
all three columns, not the node's whole direction of the unique identity index."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gateway.adapters.sql.engine import create_engine, create_schema

pytestmark = pytest.mark.database


async def test_finding_a_message_by_node_direction_and_id_reads_the_lookup_index(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        await create_schema(engine)
        async with engine.begin() as conn:
            # A node that received 5,000 queries from 50 townships, and statistics about them: on an empty
            # table the planner's choice between indexes is a guess.
            await conn.execute(text(
                "INSERT INTO messages (node, direction, message_id, kind, sender, recipient, created_at,"
                " accepted_at, envelope_sha256, envelope, body_sealed, status)"
                " SELECT '110101001', 'in', 'm-' || i, 'query', lpad((120101001 + i % 50)::text, 9, '0'),"
                " '110101001', now(), now(), repeat('e', 64), '\\x00', '\\x00', 'received'"
                " FROM generate_series(1, 5000) AS i"))
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE messages"))
            plan = "\n".join(row[0] for row in (await conn.execute(text(
                "EXPLAIN SELECT * FROM messages WHERE node = '110101001' AND direction = 'in'"
                " AND message_id = 'm-1'"))).all())
        assert "ix_messages_lookup" in plan, plan
    finally:
        await engine.dispose()


async def test_lookups_made_at_the_same_moment_share_one_read_and_each_gets_its_own_answer(database_url: str) -> None:
    import asyncio

    from gateway.adapters.sql.store import SqlMessageStore
    from gateway.exchange.records import Direction

    engine = create_engine(database_url)
    try:
        await create_schema(engine)
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO messages (node, direction, message_id, kind, sender, recipient, created_at,"
                " accepted_at, envelope_sha256, envelope, body_sealed, status)"
                " VALUES ('110101001', 'in', :id, 'query', '120101001', '110101001', CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP, 'e', :blob, :blob, 'received')"), [{"id": f"m-{i}", "blob": b"\x00"} for i in range(10)])
        store = SqlMessageStore(engine)
        asked = [("110101001", Direction.IN, f"m-{i}") for i in range(10)] + [
            ("110101001", Direction.OUT, "m-1"), ("120101001", Direction.IN, "m-2"), ("110101001", Direction.IN, "nope")]
        found = await asyncio.gather(*(store.find(*key) for key in asked))
        assert [m.message_id if m else None for m in found] == [f"m-{i}" for i in range(10)] + [None, None, None]
        assert store._finds.batches < len(asked)
    finally:
        await engine.dispose()
