"""The engine's pool hands out the connection returned last (gateway/adapters/sql/engine.py)."""

from __future__ import annotations

import pytest

from gateway.adapters.sql.engine import create_engine

pytestmark = pytest.mark.database


async def test_the_connection_returned_last_is_the_one_used_next(database_url: str) -> None:
    """Most recent first: a quiet gateway keeps working on the few connections whose statements are
    prepared, instead of preparing every statement on every connection of the pool in turn."""
    engine = create_engine(database_url)
    try:
        held = [await engine.connect() for _ in range(3)]
        drivers = [(await c.get_raw_connection()).driver_connection for c in held]
        for conn in held:  # returned in the order taken: the third is back last
            await conn.close()
        for _ in range(3):
            async with engine.connect() as conn:
                assert (await conn.get_raw_connection()).driver_connection is drivers[2]
    finally:
        await engine.dispose()
