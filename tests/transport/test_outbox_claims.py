"""Outbox claims by township (SQLite and PostgreSQL): a relay takes only its gateway's senders' rows,
and relays claiming at the same instant never take one row twice — decided by the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.store import SqlMessageStore
from tests.gateways import T0
from tests.transport.test_store_batching import outgoing

pytestmark = pytest.mark.database

A, B, C = "110101001", "110101002", "110101003"
LEASE = T0 + timedelta(seconds=60)


@pytest.fixture
async def store(database_url: str):
    engine = create_engine(database_url)
    await create_schema(engine)
    yield SqlMessageStore(engine)
    await engine.dispose()


async def test_a_relay_claims_only_the_rows_of_the_townships_its_gateway_hosts(store: SqlMessageStore) -> None:
    rows = [outgoing(node=node) for node in (A, B, C) for _ in range(10)]
    await asyncio.gather(*(store.add_outgoing(m, o) for m, o in rows))
    claimed = await store.claim_outbox(T0, 100, LEASE, senders=[A, C])
    assert sorted({c.sender for c in claimed}) == [A, C] and len(claimed) == 20
    assert await store.claim_outbox(T0, 100, LEASE, senders=[]) == []
    rest = await store.claim_outbox(T0, 100, LEASE)  # no filter: what no one claimed yet
    assert {c.sender for c in rest} == {B} and len(rest) == 10


async def test_two_relays_hosting_one_township_claim_disjoint_rows_at_the_same_instant(
        database_url: str, store: SqlMessageStore) -> None:
    rows = [outgoing(node=A) for _ in range(200)]
    await asyncio.gather(*(store.add_outgoing(m, o) for m, o in rows))
    other_engine = create_engine(database_url)
    other = SqlMessageStore(other_engine)  # another gateway process: its own connections
    try:
        taken: list[int] = []
        for _ in range(10):
            first, second = await asyncio.gather(store.claim_outbox(T0, 15, LEASE, senders=[A]),
                                                 other.claim_outbox(T0, 15, LEASE, senders=[A, B]))
            taken += [c.id for c in first + second if c.id is not None]
        assert len(taken) == len(set(taken)) == 200
    finally:
        await other_engine.dispose()
