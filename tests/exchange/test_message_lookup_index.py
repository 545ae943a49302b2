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
        async with engine.connect() as conn:
            await conn.execute(text("SET enable_seqscan = off"))  # an empty table would be scanned otherwise
            plan = "\n".join(row[0] for row in (await conn.execute(text(
                "EXPLAIN SELECT * FROM messages WHERE node = '110101001' AND direction = 'in'"
                " AND message_id = 'm-1'"))).all())
        assert "ix_messages_lookup" in plan, plan
    finally:
        await engine.dispose()
