"""Receipts on SQLAlchemy Core: the ones we sign (queued in the outbox in the same transaction) and the
ones we get back for our own messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.engine import write_transaction
from gateway.adapters.sql.security_tables import receipts
from gateway.adapters.sql.store import _utc
from gateway.adapters.sql.tables import outbox
from gateway.exchange.records import OutboxItem
from gateway.security.receipts import Receipt


class SqlReceiptStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return write_transaction(self.engine)

    @staticmethod
    def _row(direction: str, receipt: Receipt, data: bytes, at: datetime) -> dict[str, object]:
        return {
            "direction": direction,
            "message_id": receipt.message_id,
            "sender": receipt.sender,
            "recipient": receipt.recipient,
            "envelope_sha256": receipt.envelope_sha256,
            "received_at": receipt.received,
            "recorded_at": at,
            "data": data,
        }

    async def add_sent(self, receipt: Receipt, data: bytes, item: OutboxItem) -> bool:
        """Keep the receipt we signed and queue it for the broker, in one transaction.

        On a redelivery of the same envelope the receipt exists: the stored bytes are queued again
        instead (the sender may have missed them), so the signed ``received_at`` never changes.
        """
        try:
            async with self._write() as conn:
                await conn.execute(insert(receipts), self._row("sent", receipt, data, item.created_at))
                await conn.execute(insert(outbox), _outbox_values(item))
            return True
        except IntegrityError:
            async with self._write() as conn:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.message_id == item.message_id)
                    .values(published_at=None, next_attempt_at=item.created_at)
                )
            return False

    async def add_sent_many(self, batch: list[tuple[Receipt, bytes, OutboxItem]]) -> None:
        if not batch:
            return
        try:
            async with self._write() as conn:
                await conn.execute(insert(receipts), [self._row("sent", r, d, i.created_at) for r, d, i in batch])
                await conn.execute(insert(outbox), [_outbox_values(i) for _, _, i in batch])
        except IntegrityError:
            # Some were sent before (a redelivered batch): take them one by one, which re-queues those.
            for receipt, data, item in batch:
                await self.add_sent(receipt, data, item)

    async def add_received_many(self, batch: list[tuple[Receipt, bytes]], at: datetime) -> None:
        if not batch:
            return
        try:
            async with self._write() as conn:
                await conn.execute(insert(receipts), [self._row("received", r, d, at) for r, d in batch])
        except IntegrityError:
            for receipt, data in batch:
                await self.add_received(receipt, data, at)

    async def add_received(self, receipt: Receipt, data: bytes, at: datetime) -> bool:
        try:
            async with self._write() as conn:
                await conn.execute(insert(receipts), self._row("received", receipt, data, at))
            return True
        except IntegrityError:
            return False  # the same receipt again

    async def received_for(self, message_ids: Iterable[str]) -> dict[str, datetime]:
        ids = list(message_ids)
        if not ids:
            return {}
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(receipts.c.message_id, receipts.c.received_at).where(
                        receipts.c.direction == "received", receipts.c.message_id.in_(ids)
                    )
                )
            ).all()
        return {message_id: _utc(at) for message_id, at in rows}  # type: ignore[misc]


def _outbox_values(item: OutboxItem) -> dict[str, object]:
    return {
        "message_id": item.message_id,
        "sender": item.sender,
        "routing_key": item.routing_key,
        "kind": item.kind,
        "envelope": item.envelope,
        "created_at": item.created_at,
        "attempts": item.attempts,
        "next_attempt_at": item.next_attempt_at,
    }
