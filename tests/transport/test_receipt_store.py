"""Receipts of our messages kept by the receipt store, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.receipt_store import SqlReceiptStore
from gateway.adapters.sql.security_tables import receipts
from gateway.security.encoding import utc_stamp
from gateway.security.receipts import Receipt
from tests.gateways import T0

pytestmark = pytest.mark.database


def receipt(i: int) -> tuple[Receipt, bytes]:
    return Receipt(v=1, suite="x25519-ed25519", message_id=f"m{i}", envelope_sha256=f"{i:064x}",
                   sender="120101001", recipient="110101001", received_at=utc_stamp(T0), kid="k1"), b"receipt %d" % i


async def test_a_batch_of_receipts_is_kept_once_even_when_delivered_again(database_url: str) -> None:
    """On PostgreSQL one autocommit statement for the batch; a batch holding a receipt kept before is
    refused whole by the unique identity and kept one by one, each new receipt once."""
    engine = create_engine(database_url)
    try:
        await create_schema(engine)
        store = SqlReceiptStore(engine)
        await store.add_received_many([receipt(i) for i in range(5)], T0)
        await store.add_received_many([receipt(i) for i in range(3, 8)], T0)  # 3 and 4 again
        async with engine.connect() as conn:
            kept = (await conn.execute(select(receipts.c.message_id, receipts.c.data).order_by(receipts.c.message_id))).all()
            count = (await conn.execute(select(func.count()).select_from(receipts))).scalar_one()
        assert count == 8
        assert [(m, bytes(d)) for m, d in kept] == [(f"m{i}", b"receipt %d" % i) for i in range(8)]
        assert set(await store.received_for([f"m{i}" for i in range(10)])) == {f"m{i}" for i in range(8)}
    finally:
        await engine.dispose()


async def test_receipts_we_signed_are_kept_once_and_queued_with_the_bytes_kept_first(database_url: str) -> None:
    """On PostgreSQL the receipts and their bundle's outbox row are one statement when all are new; a
    receipt signed again for a redelivered envelope stays as kept, and its kept bytes are sent again."""
    from gateway.adapters.sql.tables import outbox
    from gateway.security.receipts import split_bundle

    engine = create_engine(database_url)
    try:
        await create_schema(engine)
        store = SqlReceiptStore(engine)
        await store.add_sent_many([receipt(0), receipt(1)], T0)
        r1_again = (receipt(1)[0], b"receipt 1, signed again")
        await store.add_sent_many([r1_again, receipt(2)], T0)
        async with engine.connect() as conn:
            kept = (await conn.execute(select(receipts.c.message_id, receipts.c.data)
                                       .where(receipts.c.direction == "sent").order_by(receipts.c.message_id))).all()
            bundles = [bytes(e) for e in (await conn.execute(select(outbox.c.envelope).order_by(outbox.c.id))).scalars()]
        assert [(m, bytes(d)) for m, d in kept] == [(f"m{i}", b"receipt %d" % i) for i in range(3)]
        assert [split_bundle(b) for b in bundles] == [[b"receipt 0", b"receipt 1"], [b"receipt 1", b"receipt 2"]]
    finally:
        await engine.dispose()
