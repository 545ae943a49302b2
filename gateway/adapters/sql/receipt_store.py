"""Receipts on SQLAlchemy Core: the ones we sign (queued in the outbox, bundled, in the same transaction)
and the ones we get back for our own messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.direct_pg import direct
from gateway.adapters.sql.in_lists import padded_sorted
from gateway.adapters.sql.engine import is_sqlite, write_transaction
from gateway.adapters.sql.sqlite_hop import HopStatements, write_in_one_hop
from gateway.adapters.sql.security_tables import receipts
from gateway.adapters.sql.store import _utc
from gateway.adapters.sql.tables import outbox
from gateway.adapters.sql.unnest_insert import column_arrays, insert_rows, unnest_insert
from gateway.exchange.receipting import bundle_outbox_items
from gateway.exchange.records import OutboxItem
from gateway.security.receipts import Receipt


_RECEIPT_COLUMNS = tuple(c.name for c in receipts.columns if c.name != "id")
# The outbox columns a bundle of receipts sets (the rest keep their defaults).
_BUNDLE_COLUMNS = ("message_id", "sender", "routing_key", "kind", "envelope", "created_at", "attempts", "next_attempt_at")
# Receipts we signed and the outbox rows of their bundles in one statement: the bundles are queued
# only if every receipt was new (a bundle holds the bytes as sent the first time).
_ADD_SENT_PG = text(
    "WITH kept AS (" + unnest_insert(receipts, _RECEIPT_COLUMNS, prefix="r_")
    + " ON CONFLICT ON CONSTRAINT uq_receipts_identity DO NOTHING RETURNING 1), "
    "queued AS (" + unnest_insert(outbox, _BUNDLE_COLUMNS, prefix="o_") + " WHERE (SELECT count(*) FROM kept) = :n) "
    "SELECT count(*) FROM kept"
)
_RECEIVED_FOR = select(receipts.c.message_id, receipts.c.received_at).where(
    receipts.c.direction == "received", receipts.c.message_id.in_(bindparam("b_ids", expanding=True)))


# Built once (sqlite_hop.py compiles a statement once per object).
_STORED_SENT = select(receipts.c.data).where(receipts.c.direction == "sent", receipts.c.sender == bindparam("b_sender"),
                                             receipts.c.message_id == bindparam("b_id"))
_INSERT_BUNDLES = insert(outbox)


class SqlReceiptStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite = is_sqlite(str(engine.url))
        self._oneshot = direct(engine)  # one-shot statements: no BEGIN … COMMIT, straight on asyncpg
        identity = [receipts.c.direction, receipts.c.sender, receipts.c.message_id]
        dialect_insert = sqlite_insert if is_sqlite(str(engine.url)) else pg_insert
        self._insert_sent = (
            dialect_insert(receipts).on_conflict_do_nothing(index_elements=identity)
            .returning(receipts.c.sender, receipts.c.message_id)
        )

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

    async def add_sent_many(self, signed: Sequence[tuple[Receipt, bytes]], now: datetime) -> None:
        """Keep the receipts we signed and queue them in bundles, in one transaction.

        Inserted with ON CONFLICT DO NOTHING on the receipt's identity: a receipt kept before (the
        envelope was delivered again, and the sender may have missed the first) stays as it was, and its
        stored bytes are what is queued again."""
        if not signed:
            return
        first: dict[tuple[str, str], tuple[Receipt, bytes]] = {}
        for receipt, data in signed:
            first.setdefault((receipt.sender, receipt.message_id), (receipt, data))
        if self._sqlite:
            # The receipts, any stored before, the bundles' outbox rows and the commit in one hop.
            await write_in_one_hop(self.engine, lambda run: self._add_sent_in_hop(run, first, now))
            return
        if await self._add_sent_if_all_new(first, now):
            return
        async with self._write() as conn:
            inserted = {
                (r.sender, r.message_id)
                for r in await conn.execute(self._insert_sent, [self._row("sent", r, d, now) for r, d in first.values()])
            }
            again = [key for key in first if key not in inserted]
            if again:
                stored = await self._stored_sent(conn, again)
                for key in again:
                    first[key] = (first[key][0], stored[key])
            await conn.execute(insert(outbox), [_outbox_values(i) for i in bundle_outbox_items(list(first.values()), now)])

    async def _add_sent_if_all_new(self, first: dict[tuple[str, str], tuple[Receipt, bytes]], now: datetime) -> bool:
        """PostgreSQL, the usual case of receipts none of which was kept before: the receipts and their
        bundles' outbox rows in ONE autocommit statement. If some were kept before, the new ones are
        inserted, no bundle is queued, and False sends the caller the transaction's way (which finds
        them all kept and queues their stored bytes)."""
        rows = [self._row("sent", r, d, now) for r, d in first.values()]
        items = [_outbox_values(i) for i in bundle_outbox_items(list(first.values()), now)]
        params = {**column_arrays(rows, _RECEIPT_COLUMNS, prefix="r_"),
                  **column_arrays(items, _BUNDLE_COLUMNS, prefix="o_"), "n": len(rows)}
        async with self._oneshot.connect() as conn:
            return (await conn.execute(_ADD_SENT_PG, params)).scalar_one() == len(rows)

    def _add_sent_in_hop(self, run: HopStatements, first: dict[tuple[str, str], tuple[Receipt, bytes]],
                         now: datetime) -> None:
        """``add_sent_many`` in an SQLite connection's thread: one INSERT per receipt (each tells
        whether it was new), the stored bytes of those kept before, then the bundles."""
        for key, (receipt, data) in first.items():
            if not run.execute(self._insert_sent, self._row("sent", receipt, data, now)).rows:
                stored = run.execute(_STORED_SENT, {"b_sender": key[0], "b_id": key[1]}).scalar()
                first[key] = (receipt, bytes(stored))
        run.executemany(_INSERT_BUNDLES, [_outbox_values(i) for i in bundle_outbox_items(list(first.values()), now)])

    @staticmethod
    async def _stored_sent(conn: AsyncConnection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        rows = await conn.execute(
            select(receipts.c.sender, receipts.c.message_id, receipts.c.data).where(
                receipts.c.direction == "sent",
                receipts.c.sender.in_(padded_sorted(k[0] for k in keys)),
                receipts.c.message_id.in_(padded_sorted(k[1] for k in keys)),
            )
        )
        return {(r.sender, r.message_id): bytes(r.data) for r in rows}

    async def add_received_many(self, batch: list[tuple[Receipt, bytes]], at: datetime) -> None:
        if not batch:
            return
        try:
            await insert_rows(self.engine, receipts, [self._row("received", r, d, at) for r, d in batch])
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
        async with self._oneshot.connect() as conn:
            rows = (await conn.execute(_RECEIVED_FOR, {"b_ids": padded_sorted(ids)})).all()
        return {message_id: _utc(at) for message_id, at in rows}  # type: ignore[misc]


def _outbox_values(item: OutboxItem) -> dict[str, object]:
    return {name: getattr(item, name) for name in _BUNDLE_COLUMNS}
