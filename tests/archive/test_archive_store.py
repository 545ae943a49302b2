"""The hash-chained archive on a real database: every envelope sent and received, verifiable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update

from gateway.adapters.sql.security_tables import archive
from gateway.exchange.records import Direction
from gateway.security.archive import verify_chain
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, sample_query, running_gateway

pytestmark = pytest.mark.database


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path):
    async for gw in _gateway(database_url, tmp_path):
        yield gw


@pytest.fixture
async def pg_gateway(postgres_url: str, tmp_path: Path):
    async for gw in _gateway(postgres_url, tmp_path):
        yield gw


async def _gateway(database_url: str, tmp_path: Path):
    async with running_gateway(database_url=database_url, data_dir=tmp_path) as gw:
        yield gw


async def exchange_one(gw) -> str:
    query = await gw.service.submit(RESIDENCE, sample_query())
    await gw.relay.run_once()
    await gw.service.answer(REGISTRATION, query.message_id, FOUND)
    await gw.relay.run_once()
    return query.message_id


async def all_records(gw):
    return [r async for r in gw.archive.records()]


async def test_every_envelope_sent_and_received_is_chained_byte_for_byte(gateway):
    query_id = await exchange_one(gateway)
    while await gateway.archive.archive_pending(gateway.clock.now()):
        pass
    records = await all_records(gateway)
    assert verify_chain(records) is None
    kinds = {(r.record.direction, r.record.item, r.record.message_id == query_id) for r in records}
    assert ("sent", "envelope", True) in kinds and ("received", "envelope", True) in kinds
    sent = await gateway.store.find(RESIDENCE, Direction.OUT, query_id)
    assert any(r.data == sent.envelope for r in records)
    assert await gateway.archive.archive_pending(gateway.clock.now()) == 0  # archived once only


async def test_a_changed_archived_envelope_is_detected_at_its_record(gateway):
    await exchange_one(gateway)
    await gateway.archive.archive_pending(gateway.clock.now())
    async with gateway.engine.begin() as conn:
        await conn.execute(update(archive).where(archive.c.seq == 2).values(data=b"forged"))
    broken = verify_chain(await all_records(gateway))
    assert broken is not None and broken.seq == 2 and broken.reason == "data_hash"


async def test_a_deleted_archive_record_is_detected(gateway):
    await exchange_one(gateway)
    await gateway.archive.archive_pending(gateway.clock.now())
    async with gateway.engine.begin() as conn:
        await conn.execute(archive.delete().where(archive.c.seq == 1))
    broken = verify_chain(await all_records(gateway))
    assert broken is not None and broken.reason == "seq"


async def test_a_row_committed_after_later_ones_were_chained_gets_in_at_the_sweep(gateway):
    """A regular pass looks only after the last row archived; a row whose id is older than that — a
    transaction that committed after later ones were chained — is chained by the sweep, once."""
    from sqlalchemy import insert, select

    from gateway.adapters.sql.tables import messages

    for _ in range(3):
        await exchange_one(gateway)
    while await gateway.archive.archive_pending(gateway.clock.now(), sweep=False):
        pass
    async with gateway.engine.begin() as conn:
        first = (await conn.execute(select(messages).order_by(messages.c.id).limit(1))).one()._asdict()
        await conn.execute(insert(messages).values({**first, "id": -5, "message_id": "late", "direction": "in"}))
    assert await gateway.archive.archive_pending(gateway.clock.now(), sweep=False) == 0
    assert await gateway.archive.archive_pending(gateway.clock.now(), sweep=True) == 1
    assert await gateway.archive.archive_pending(gateway.clock.now(), sweep=True) == 0
    records = await all_records(gateway)
    assert verify_chain(records) is None
    assert [r.record.message_id for r in records].count("late") == 1


async def test_archivers_of_two_gateways_racing_on_one_database_keep_one_chain(pg_gateway, postgres_url: str):
    """Regular passes of two archivers at the same moments (two gateways on one PostgreSQL database,
    the only database gateways share): each appends by one statement conditional on the head it read, and the loser of a race
    does its pass again under the chain's lock; every row is chained once, the chain has no gap."""
    from gateway.adapters.sql.archive_store import SqlArchiveStore
    from gateway.adapters.sql.direct_pg import dispose
    from gateway.adapters.sql.engine import create_engine

    gateway = pg_gateway
    other_engine = create_engine(postgres_url)
    other = SqlArchiveStore(other_engine)
    try:
        for _ in range(6):
            await exchange_one(gateway)
            now = gateway.clock.now()
            await asyncio.gather(*(store.archive_pending(now, 2, sweep=False)
                                   for store in (gateway.archive, other, gateway.archive, other)))
        while await other.archive_pending(gateway.clock.now(), sweep=False):
            pass
        records = await all_records(gateway)
        assert verify_chain(records) is None
        sources = [(r.record.direction, r.record.item, r.record.message_id) for r in records]
        assert len(sources) == len(set(sources))
        assert await gateway.archive.archive_pending(gateway.clock.now(), sweep=True) == 0  # nothing missed
        assert gateway.archive.fast_appends + other.fast_appends > 0  # the statement, not only the lock
        assert len(records) == 6 * 4 + await _receipts(gateway)  # 4 envelopes per exchange (sent, received)
    finally:
        await dispose(other_engine)


async def _receipts(gw) -> int:
    from sqlalchemy import func, select

    from gateway.adapters.sql.security_tables import receipts

    async with gw.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(receipts))).scalar_one()
